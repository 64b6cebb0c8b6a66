// The per-second score plot: the model's curve over the whole video, the chosen clips as bands.
import { clock, h, svg } from "./dom.js";

const WIDTH = 1000;
const HEIGHT = 160;
const PAD = 8;

export function renderPlot(area, axis, { scores, step_seconds: step }, clips, onPick) {
  const duration = clips.reduce((most, clip) => Math.max(most, clip.end), scores.length * step) || 1;
  // A loop, not Math.min(...scores): hours of video are more arguments than a call may take.
  let low = scores.length ? Infinity : 0;
  let high = scores.length ? -Infinity : 1;
  for (const score of scores) {
    low = Math.min(low, score);
    high = Math.max(high, score);
  }
  const span = high - low > 1e-9 ? high - low : 1;
  const x = (seconds) => (seconds / duration) * WIDTH;
  const y = (score) => HEIGHT - PAD - ((score - low) / span) * (HEIGHT - 2 * PAD);

  const points = scores.map((score, i) => `${x((i + 0.5) * step).toFixed(2)},${y(score).toFixed(2)}`);
  const line = points.length ? `M${points.join("L")}` : "";
  const fill = points.length
    ? `M${x(0.5 * step).toFixed(2)},${HEIGHT}L${points.join("L")}L${x((scores.length - 0.5) * step).toFixed(2)},${HEIGHT}Z`
    : "";

  const bands = clips.map((clip) =>
    svg("rect", {
      class: "band",
      x: x(clip.start).toFixed(2),
      y: 0,
      width: Math.max(2, x(clip.end) - x(clip.start)).toFixed(2),
      height: HEIGHT,
    }),
  );
  const chart = svg(
    "svg",
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      preserveAspectRatio: "none",
      "aria-hidden": "true",
      focusable: "false",
    },
    bands,
    svg("path", { class: "area", d: fill }),
    svg("path", { class: "curve", d: line, "vector-effect": "non-scaling-stroke" }),
  );

  // The bands people press are buttons over the chart: focusable, labelled, Enter and Space for free.
  const buttons = clips.map((clip) => {
    const button = h(
      "button",
      {
        type: "button",
        class: "band-button",
        "aria-label": `Play clip ${clip.rank}, ${clock(clip.start)} to ${clock(clip.end)}`,
        title: `Clip ${clip.rank}: ${clock(clip.start)}–${clock(clip.end)}`,
        onclick: () => onPick(clip),
      },
      String(clip.rank),
    );
    button.style.left = `${(clip.start / duration) * 100}%`;
    button.style.width = `${Math.max(0.8, ((clip.end - clip.start) / duration) * 100)}%`;
    return button;
  });
  area.replaceChildren(chart, ...buttons);

  const ticks = [0, 0.25, 0.5, 0.75, 1].map((fraction) => {
    const tick = h("span", {}, clock(fraction * duration));
    tick.style.left = `${fraction * 100}%`;
    return tick;
  });
  axis.replaceChildren(...ticks);
}
