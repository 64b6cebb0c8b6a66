// A finished job's clips: previews, what they are, downloads and ratings.
//
// The media routes need the bearer token, which a <video src> cannot send. Each clip is fetched with it
// and played from a blob: URL (clips are short, so holding one in memory is cheap); the token never
// appears in a URL, a log line or a Referer.
import { describe } from "./api.js";
import { clock, h, saveAs, svg } from "./dom.js";

const RATINGS_KEY = "opusclip.ratings";
const EXCERPT_CHARS = 240;
const PARALLEL_PREVIEWS = 2;

const ASPECT_CLASS = { "9:16": "tall", "1:1": "square", source: "wide" };

// Thumbs from Feather icons (v4.29, MIT licence, https://feathericons.com).
const THUMB_UP =
  "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3";
const THUMB_DOWN =
  "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17";

function icon(path) {
  return svg(
    "svg",
    { class: "icon", viewBox: "0 0 24 24", width: 18, height: 18, "aria-hidden": "true", focusable: "false" },
    svg("path", { d: path }),
  );
}

// The API's links are absolute; the path alone keeps requests on this page's origin (which the CSP
// requires) when a proxy answers under another host name than the one the service sees.
export function local(link) {
  const url = new URL(link, document.baseURI);
  return url.pathname + url.search;
}

function ratings() {
  try {
    return JSON.parse(sessionStorage.getItem(RATINGS_KEY) ?? "{}") ?? {};
  } catch {
    return {};
  }
}

function remember(clipId, rating) {
  sessionStorage.setItem(RATINGS_KEY, JSON.stringify({ ...ratings(), [clipId]: rating }));
}

export function forgetRatings() {
  sessionStorage.removeItem(RATINGS_KEY);
}

export class ClipList {
  constructor(list, status) {
    this.list = list;
    this.status = status;
    this.cards = new Map();
    this.urls = [];
    this.generation = 0;
  }

  clear() {
    this.generation += 1;
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls = [];
    this.cards.clear();
    this.list.replaceChildren();
    this.status.textContent = "";
  }

  show(api, job) {
    this.clear();
    const clips = job.clips ?? [];
    const shape = ASPECT_CLASS[job.options?.aspect] ?? "wide";
    this.status.textContent = clips.length
      ? `${clips.length} clip${clips.length === 1 ? "" : "s"}, best first.`
      : "This video gave no clips: try shorter lengths.";
    for (const clip of clips) {
      const card = new ClipCard(api, clip, shape);
      this.cards.set(clip.id, card);
      this.list.append(card.element);
    }
    this.loadPreviews([...this.cards.values()], this.generation);
  }

  async loadPreviews(cards, generation) {
    const queue = [...cards];
    const next = async () => {
      for (let card = queue.shift(); card; card = queue.shift()) {
        if (generation !== this.generation) return;
        const url = await card.load();
        if (url && generation === this.generation) this.urls.push(url);
        else if (url) URL.revokeObjectURL(url);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL_PREVIEWS }, next));
  }

  play(clip) {
    this.cards.get(clip.id)?.play();
  }
}

class ClipCard {
  constructor(api, clip, shape) {
    this.api = api;
    this.clip = clip;
    this.media = null;
    this.ready = null;
    this.video = h("video", {
      controls: true,
      playsinline: true,
      preload: "metadata",
      "aria-label": `Clip ${clip.rank} preview`,
    });
    this.note = h("p", { class: "frame-note" }, "Loading preview…");
    this.rated = h("span", { class: "rated", "aria-live": "polite" });
    this.problem = h("p", { class: "error", role: "alert" });
    const rateButton = (kind, path, text, hint) =>
      h("button", { type: "button", class: `rate ${kind}`, "aria-pressed": "false", title: hint }, icon(path), text);
    this.up = rateButton("up", THUMB_UP, "Keep", "Thumbs up: a good clip");
    this.down = rateButton("down", THUMB_DOWN, "Skip", "Thumbs down: not a good clip");
    this.up.addEventListener("click", () => this.rate(1));
    this.down.addEventListener("click", () => this.rate(-1));
    this.showRating(ratings()[clip.id] ?? clip.my_rating ?? null);

    const excerpt =
      clip.transcript && clip.transcript.length > EXCERPT_CHARS
        ? `${clip.transcript.slice(0, EXCERPT_CHARS).trimEnd()}…`
        : clip.transcript;
    const downloads = [h("button", { type: "button", onclick: () => this.download("mp4") }, "MP4")];
    for (const fmt of ["srt", "vtt"]) {
      if (clip.links[`captions_${fmt}`]) {
        downloads.push(h("button", { type: "button", onclick: () => this.download(fmt) }, fmt.toUpperCase()));
      }
    }
    const title = clip.title || `Clip ${clip.rank}`;
    this.element = h(
      "li",
      { class: "clip", id: `clip-${clip.id}` },
      h("div", { class: `frame ${shape}` }, this.video, this.note),
      h("h3", {}, h("span", { class: "rank" }, `#${clip.rank}`), " ", h("span", { class: "title" }, title)),
      h(
        "p",
        { class: "facts" },
        h("span", {}, `score ${clip.score.toFixed(2)}`),
        h("span", {}, `${clip.duration.toFixed(1)} s`),
        h("span", {}, `${clock(clip.start)}–${clock(clip.end)}`),
      ),
      excerpt ? h("blockquote", { class: "excerpt" }, excerpt) : null,
      h(
        "div",
        { class: "actions" },
        h("div", { class: "downloads", role: "group", "aria-label": `Download clip ${clip.rank}` }, downloads),
        h("div", { class: "rating", role: "group", "aria-label": `Rate clip ${clip.rank}` }, this.up, this.down),
      ),
      this.rated,
      this.problem,
    );
    this.video.setAttribute("aria-label", `Clip ${clip.rank}: ${title}`);
  }

  load() {
    this.ready ??= this.api.blob(local(this.clip.links.media)).then(
      (blob) => {
        this.media = blob;
        const url = URL.createObjectURL(blob);
        this.video.src = url;
        this.note.remove();
        return url;
      },
      (error) => {
        this.note.textContent = "No preview";
        this.problem.textContent = describe(error);
        return null;
      },
    );
    return this.ready;
  }

  async play() {
    this.element.scrollIntoView({ behavior: "smooth", block: "center" });
    this.video.focus({ preventScroll: true });
    if (!(await this.load())) return;
    try {
      await this.video.play();
    } catch (error) {
      // Playback refused (a browser without h264, say): the controls are still there to try by hand.
      this.problem.textContent = `This browser could not play the clip (${error.name}).`;
    }
  }

  async download(fmt) {
    this.problem.textContent = "";
    const name = `clip_${String(this.clip.rank).padStart(2, "0")}.${fmt}`;
    try {
      const link = fmt === "mp4" ? this.clip.links.media : this.clip.links[`captions_${fmt}`];
      const blob = fmt === "mp4" && this.media ? this.media : await this.api.blob(local(link));
      saveAs(blob, name);
    } catch (error) {
      this.problem.textContent = describe(error);
    }
  }

  async rate(rating) {
    this.problem.textContent = "";
    try {
      const stored = await this.api.send("POST", local(this.clip.links.feedback), { rating });
      remember(this.clip.id, stored.rating);
      this.showRating(stored.rating);
    } catch (error) {
      this.problem.textContent = describe(error);
    }
  }

  showRating(rating) {
    this.up.setAttribute("aria-pressed", String(rating === 1));
    this.down.setAttribute("aria-pressed", String(rating === -1));
    this.rated.textContent =
      rating === 1 ? "You kept this clip." : rating === -1 ? "You skipped this clip." : "";
  }
}
