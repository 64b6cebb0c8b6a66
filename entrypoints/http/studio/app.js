// The studio page: sign in, submit, follow jobs, show a finished job's clips and score plot.
import { Api, ApiError, describe } from "./api.js";
import { ClipList, forgetRatings } from "./clips.js";
import { byId, bytes, h, setText, when } from "./dom.js";
import { renderPlot } from "./plot.js";

const TOKEN_KEY = "opusclip.token";
const PAGE_SIZE = 10;
const POLL_MS = 1500;
const RETRY_MS = 5000;

const state = {
  api: null,
  config: null,
  file: null,
  cursors: [null], // the cursor of each page seen so far; the last is the page shown
  jobs: [],
  nextCursor: null,
  selected: null, // the job shown in full
  shownClipsFor: null,
  timer: null,
};

const clips = new ClipList(byId("clips"), byId("clips-status"));

// ---- sign-in -------------------------------------------------------------------------------------

function subjectOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const raw = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")), (c) =>
      c.charCodeAt(0),
    );
    const sub = JSON.parse(new TextDecoder().decode(raw)).sub;
    return typeof sub === "string" ? sub : null;
  } catch {
    return null;
  }
}

function showSignIn(message = "") {
  stopPolling();
  clips.clear();
  state.api = null;
  state.selected = state.shownClipsFor = null;
  byId("studio").hidden = true;
  byId("account").hidden = true;
  byId("sign-in").hidden = false;
  setText("sign-in-error", message);
  byId("token").value = "";
  byId("token").focus();
}

function rejected(error) {
  sessionStorage.removeItem(TOKEN_KEY);
  forgetRatings();
  showSignIn(describe(error));
}

async function signIn(token) {
  const api = new Api(token, rejected);
  setText("sign-in-error", "");
  try {
    await api.json(`v1/jobs?limit=1`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // rejected() has shown why
    showSignIn(describe(error));
    if (error instanceof ApiError && error.status === 403) sessionStorage.removeItem(TOKEN_KEY);
    else byId("token").value = token; // the service was unreachable or busy: the token may be fine
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.api = api;
  setText("who", `Signed in as ${subjectOf(token) ?? "(unnamed)"}`);
  byId("account").hidden = false;
  byId("sign-in").hidden = true;
  byId("studio").hidden = false;
  state.cursors = [null];
  await loadJobs();
  const wanted = new URLSearchParams(location.hash.slice(1)).get("job");
  if (wanted) await select(wanted);
  else byId("main").focus();
  poll();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  forgetRatings();
  history.replaceState(null, "", location.pathname);
  showSignIn("");
}

// ---- submitting ----------------------------------------------------------------------------------

function fillForm(config) {
  const defaults = config.defaults;
  byId("max-clips").value = defaults.max_clips;
  byId("min-seconds").value = defaults.min_seconds;
  byId("max-seconds").value = defaults.max_seconds;
  byId("burn-captions").checked = Boolean(defaults.burn_captions);
  const names = { source: "As the source", "9:16": "Vertical 9:16", "1:1": "Square 1:1" };
  byId("aspect").replaceChildren(
    ...config.aspects.map((aspect) =>
      h("option", { value: aspect, selected: aspect === defaults.aspect }, names[aspect] ?? aspect),
    ),
  );
  setText("upload-limit", bytes(config.max_upload_bytes));
}

function choose(file) {
  state.file = file ?? null;
  setText("submit-error", "");
  if (!state.file) {
    setText("file-chosen", "");
    return;
  }
  byId("url").value = "";
  setText("file-chosen", `Chosen: ${state.file.name} (${bytes(state.file.size)})`);
  if (state.file.size > state.config.max_upload_bytes) {
    setText(
      "submit-error",
      `${state.file.name} is ${bytes(state.file.size)}, over the upload limit of ${bytes(state.config.max_upload_bytes)}.`,
    );
  }
}

function readOptions() {
  const whole = (id, label) => {
    const value = Number(byId(id).value);
    if (!Number.isInteger(value)) throw new Error(`${label} must be a whole number.`);
    return value;
  };
  const options = {
    max_clips: whole("max-clips", "How many"),
    min_seconds: whole("min-seconds", "Shortest"),
    max_seconds: whole("max-seconds", "Longest"),
    aspect: byId("aspect").value,
    burn_captions: byId("burn-captions").checked,
  };
  if (options.min_seconds > options.max_seconds) {
    throw new Error("The shortest length cannot be above the longest.");
  }
  return options;
}

async function submit(event) {
  event.preventDefault();
  setText("submit-error", "");
  const url = byId("url").value.trim();
  let options;
  try {
    options = readOptions();
  } catch (error) {
    setText("submit-error", error.message);
    return;
  }
  if (!state.file && !url) {
    setText("submit-error", "Choose or drop a video file, or paste its URL.");
    return;
  }
  const limit = state.config.max_upload_bytes;
  if (state.file && state.file.size > limit) {
    setText("submit-error", `${state.file.name} is ${bytes(state.file.size)}, over the upload limit of ${bytes(limit)}.`);
    return;
  }
  const button = byId("submit-button");
  button.disabled = true;
  try {
    let job;
    if (state.file) {
      byId("upload").hidden = false;
      job = await state.api.upload(state.file, options, (fraction) => {
        byId("upload-progress").value = fraction;
        setText("upload-percent", `${Math.round(fraction * 100)}%`);
      });
    } else {
      job = await state.api.send("POST", "v1/jobs", { url, options });
    }
    choose(null);
    byId("file").value = "";
    byId("url").value = "";
    state.cursors = [null];
    await loadJobs();
    await select(job.id);
    poll();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      setText("submit-error", describe(error, bytes(limit)));
    }
  } finally {
    button.disabled = false;
    byId("upload").hidden = true;
    byId("upload-progress").value = 0;
    setText("upload-percent", "");
  }
}

function bindDrop() {
  const zone = byId("drop");
  // Dropped anywhere else, a file would replace the page.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());
  zone.addEventListener("dragover", () => zone.classList.add("over"));
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    zone.classList.remove("over");
    const file = event.dataTransfer?.files?.[0];
    if (file) choose(file);
  });
  byId("file").addEventListener("change", (event) => choose(event.target.files[0]));
  byId("url").addEventListener("input", () => {
    if (byId("url").value && state.file) {
      choose(null);
      byId("file").value = "";
    }
  });
}

// ---- jobs ----------------------------------------------------------------------------------------

const STATUS = {
  queued: "Queued",
  running: "Working",
  succeeded: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

function finished(job) {
  return ["succeeded", "failed", "cancelled"].includes(job.status);
}

function nameOf(job) {
  if (job.source.kind === "upload") return job.source.filename || "Uploaded video";
  return job.source.url ?? "Video";
}

function stageText(job) {
  if (job.status === "running" || job.status === "queued") {
    const stage = job.status === "running" ? ` · ${job.stage}` : "";
    const cancelling = job.cancel_requested ? " · cancelling" : "";
    return `${STATUS[job.status]}${stage} · ${Math.round(job.progress * 100)}%${cancelling}`;
  }
  return STATUS[job.status] ?? job.status;
}

async function loadJobs() {
  const cursor = state.cursors.at(-1);
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (cursor) query.set("cursor", cursor);
  const page = await state.api.json(`v1/jobs?${query}`);
  state.jobs = page.jobs;
  state.nextCursor = page.next_cursor;
  setText("jobs-error", "");
  renderJobs();
}

function renderJobs() {
  const items = state.jobs.map((job) => {
    const current = state.selected?.id === job.id;
    const bar = finished(job) ? null : h("progress", { max: 1, value: job.progress, "aria-hidden": "true" });
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: `job-item ${job.status}`,
          "aria-current": current ? "true" : null,
          onclick: () => select(job.id),
        },
        h("span", { class: "job-name" }, nameOf(job)),
        h("span", { class: `badge ${job.status}` }, stageText(job)),
        bar,
        h("span", { class: "job-when" }, when(job.created_at)),
      ),
    );
  });
  byId("job-list").replaceChildren(...items);
  byId("jobs-empty").hidden = state.jobs.length > 0 || state.cursors.length > 1;
  byId("newer").disabled = state.cursors.length <= 1;
  byId("older").disabled = !state.nextCursor;
}

async function turnPage(older) {
  if (older && state.nextCursor) state.cursors.push(state.nextCursor);
  else if (!older && state.cursors.length > 1) state.cursors.pop();
  try {
    await loadJobs();
    byId("job-list").querySelector("button")?.focus();
  } catch (error) {
    showJobsError(error);
  }
  poll();
}

function showJobsError(error) {
  if (!(error instanceof ApiError && error.status === 401)) setText("jobs-error", describe(error));
}

async function select(jobId) {
  let job;
  try {
    job = await state.api.json(`v1/jobs/${encodeURIComponent(jobId)}`);
  } catch (error) {
    showJobsError(error);
    return;
  }
  history.replaceState(null, "", `#job=${encodeURIComponent(job.id)}`);
  if (state.selected?.id !== job.id) {
    clips.clear();
    state.shownClipsFor = null;
    byId("plot").hidden = true;
  }
  state.selected = job;
  byId("job").hidden = false;
  renderJob(job);
  renderJobs();
  byId("job-title").focus();
  poll();
}

function renderJob(job) {
  const options = job.options ?? {};
  setText("job-title", nameOf(job));
  const parts = [`Submitted ${when(job.created_at)}`];
  if (options.max_clips) parts.push(`up to ${options.max_clips} clips of ${options.min_seconds}–${options.max_seconds} s`);
  if (options.aspect) parts.push(`shape ${options.aspect}`);
  if (options.burn_captions) parts.push("captions burned in");
  setText("job-meta", parts.join(" · "));
  byId("job-progress").hidden = finished(job) && job.status !== "succeeded";
  byId("job-progress-bar").value = job.progress;
  setText("job-stage", stageText(job));
  setText("job-error", job.error ? `${job.status === "failed" ? "Failed" : "Last error"}: ${job.error.message ?? job.error.code} (${job.error.code})` : "");
  byId("cancel").hidden = finished(job) || job.cancel_requested;
  if (job.status === "succeeded" && state.shownClipsFor !== job.id) {
    state.shownClipsFor = job.id;
    clips.show(state.api, job);
    showPlot(job);
  }
}

async function showPlot(job) {
  try {
    const scores = await state.api.json(`v1/jobs/${encodeURIComponent(job.id)}/scores`);
    if (state.selected?.id !== job.id) return;
    renderPlot(byId("plot-area"), byId("plot-axis"), scores, job.clips ?? [], (clip) => clips.play(clip));
    byId("plot").hidden = false;
  } catch (error) {
    // A job from before scores were kept has none: the clips speak for themselves.
    byId("plot").hidden = true;
    if (!(error instanceof ApiError && [401, 404].includes(error.status))) setText("job-error", describe(error));
  }
}

async function cancel() {
  const job = state.selected;
  if (!job) return;
  try {
    const updated = await state.api.json(`v1/jobs/${encodeURIComponent(job.id)}`, { method: "DELETE" });
    state.selected = updated;
    renderJob(updated);
    byId("job-title").focus();
    poll();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) setText("job-error", describe(error));
  }
}

// ---- live progress: polling, one request per tick while something is still running ------------------
//
// The server-sent events route needs the bearer header, which EventSource cannot send; a poll of the job
// (and of the page of jobs when others there are running) is as live at this pace and needs no stream per
// job, so many running jobs do not use up the browser's few connections to the server.

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = null;
}

function poll(delay = POLL_MS) {
  stopPolling();
  const busy = (state.selected && !finished(state.selected)) || state.jobs.some((job) => !finished(job));
  if (state.api && busy) state.timer = setTimeout(tick, delay);
}

async function tick() {
  state.timer = null;
  try {
    if (state.selected && !finished(state.selected)) {
      const job = await state.api.json(`v1/jobs/${encodeURIComponent(state.selected.id)}`);
      if (state.selected?.id === job.id) {
        state.selected = job;
        renderJob(job);
      }
      state.jobs = state.jobs.map((listed) => (listed.id === job.id ? job : listed));
    }
    if (state.jobs.some((job) => !finished(job) && job.id !== state.selected?.id)) await loadJobs();
    else renderJobs();
    poll();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    showJobsError(error);
    poll(error instanceof ApiError && error.retryAfter ? error.retryAfter * 1000 : RETRY_MS);
  }
}

// ---- start -----------------------------------------------------------------------------------------

async function start() {
  byId("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = byId("token").value.trim();
    if (!token) {
      setText("sign-in-error", "Paste a token first.");
      return;
    }
    signIn(token);
  });
  byId("sign-out").addEventListener("click", signOut);
  byId("submit-form").addEventListener("submit", submit);
  byId("newer").addEventListener("click", () => turnPage(false));
  byId("older").addEventListener("click", () => turnPage(true));
  byId("cancel").addEventListener("click", cancel);
  bindDrop();
  try {
    state.config = await (await fetch("studio/config.json", { cache: "no-store" })).json();
  } catch {
    showSignIn("The service could not be reached. Reload the page to try again.");
    return;
  }
  fillForm(state.config);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) await signIn(token);
  else showSignIn();
}

start();
