// Classification scores from logits: top-1, top-5, per-class accuracy and the
// confusion matrix (rows = true class, columns = predicted), accumulated batch
// by batch so an evaluation never holds all logits.

export interface ClassScores {
  n: number;
  top1: number;
  top5: number;
  /** Accuracy of each class over its own images (null for a class with none). */
  perClass: Array<number | null>;
  /** counts[true][predicted]. */
  confusion: number[][];
  classes: string[];
}

export class ClassMetrics {
  private n = 0;
  /** Rows scored so far. */
  get count(): number { return this.n; }
  private hit1 = 0;
  private hit5 = 0;
  readonly confusion: number[][];
  constructor(readonly numClasses: number, readonly classes: string[] = []) {
    this.confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  }

  /** m rows of logits [m, numClasses] and their labels. */
  add(logits: Float32Array, labels: ArrayLike<number>, m: number): void {
    const K = this.numClasses;
    if (logits.length !== m * K) throw new RangeError(`metrics: ${logits.length} logits for ${m} rows of ${K} classes`);
    for (let i = 0; i < m; i++) {
      const row = logits.subarray(i * K, (i + 1) * K), y = labels[i];
      if (!(Number.isInteger(y) && y >= 0 && y < K)) throw new RangeError(`metrics: label ${y} (row ${i}) is not one of the model's ${K} classes`);
      let best = 0;
      for (let k = 1; k < K; k++) if (row[k] > row[best]) best = k;
      // rank of the label: how many classes score strictly higher (ties count for the label)
      let above = 0;
      for (let k = 0; k < K; k++) if (row[k] > row[y]) above++;
      this.n++;
      if (best === y) this.hit1++;
      if (above < 5) this.hit5++;
      this.confusion[y][best]++;
    }
  }

  result(): ClassScores {
    const perClass = this.confusion.map((r, c) => { const t = r.reduce((a, b) => a + b, 0); return t ? r[c] / t : null; });
    return { n: this.n, top1: this.n ? this.hit1 / this.n : 0, top5: this.n ? this.hit5 / this.n : 0, perClass, confusion: this.confusion.map((r) => r.slice()), classes: this.classes };
  }
}
