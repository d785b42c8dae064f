/**
 * A one-line progress bar on stderr, redrawn in place, for terminals only: piped or redirected
 * stderr gets no carriage-return noise, just the lines the command chooses to print.
 */
import type { Output } from "./io.js";

/** A progress bar; every method is a no-op when the stream is not a terminal. */
export class ProgressBar {
  readonly #out: Output;
  readonly #label: string;
  readonly #enabled: boolean;
  #drawn = false;

  constructor(out: Output, label: string) {
    this.#out = out;
    this.#label = label;
    this.#enabled = out.isTTY === true;
  }

  /** Redraws the bar at done/total; an unknown or zero total shows only the count. */
  update(done: number, total: number, detail = ""): void {
    if (!this.#enabled) return;
    const columns = this.#out.columns ?? 80;
    const suffix = total > 0 ? ` ${percent(done, total)} ${done}/${total}` : ` ${done}`;
    const tail = detail === "" ? suffix : `${suffix} ${detail}`;
    const width = Math.max(10, Math.min(40, columns - this.#label.length - tail.length - 4));
    const filled = total > 0 ? Math.round((Math.min(done, total) / total) * width) : 0;
    const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
    // \x1b[K clears what a longer previous line left behind.
    this.#out.write(`\r${this.#label} ${bar}${tail}\x1b[K`);
    this.#drawn = true;
  }

  /** Ends the bar's line so later output starts on a fresh one. */
  finish(): void {
    if (this.#enabled && this.#drawn) this.#out.write("\n");
    this.#drawn = false;
  }
}

function percent(done: number, total: number): string {
  return `${Math.floor((Math.min(done, total) / total) * 100)}%`.padStart(4);
}
