// Bytes per second over the last four minutes, drawn on a small canvas; a
// zero is added for every idle second, as the bubble app's graph does.

const SECONDS = 240;

export class Sparkline {
  #canvas;
  #values = [];
  #addedThisSecond = false;

  constructor(canvas) {
    this.#canvas = canvas;
  }

  add(bytes) {
    if (this.#addedThisSecond) this.#values[this.#values.length - 1] += bytes;
    else this.#push(bytes);
    this.#addedThisSecond = true;
    this.#draw();
  }

  /** Called every second: an idle second counts as zero. */
  tick() {
    if (!this.#addedThisSecond) this.#push(0);
    this.#addedThisSecond = false;
    this.#draw();
  }

  #push(value) {
    this.#values.push(value);
    if (this.#values.length > SECONDS) this.#values.shift();
  }

  #draw() {
    const { width, height } = this.#canvas;
    const g = this.#canvas.getContext('2d');
    g.clearRect(0, 0, width, height);
    const max = Math.max(1, ...this.#values);
    const step = width / SECONDS;
    g.beginPath();
    this.#values.forEach((v, i) => {
      const x = width - (this.#values.length - i) * step;
      const y = height - 1 - (v / max) * (height - 2);
      if (i === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    });
    g.strokeStyle = '#1e88e5';
    g.stroke();
  }
}
