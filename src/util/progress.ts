// A progress line on stderr: redrawn in place on a terminal, printed every few
// seconds otherwise (CI logs), so stdout stays free for --json results.
export class Progress {
  private readonly t0 = performance.now();
  private last = 0;
  private readonly tty = !!process.stderr.isTTY;
  constructor(private readonly label: string, private readonly total: number, private readonly unit = 'img', private readonly quiet = false) {}

  update(done: number, extra = ''): void {
    if (this.quiet) return;
    const now = performance.now();
    if (done < this.total && now - this.last < (this.tty ? 200 : 15000)) return;
    this.last = now;
    const s = (now - this.t0) / 1000, rate = done / Math.max(s, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : 0;
    const w = 24, fill = Math.round((w * done) / Math.max(1, this.total));
    const bar = '='.repeat(Math.max(0, fill - 1)) + (fill > 0 ? (done >= this.total ? '=' : '>') : '') + ' '.repeat(w - fill);
    const line = `${this.label} [${bar}] ${done}/${this.total} ${rate.toFixed(0)} ${this.unit}/s ${extra} ETA ${fmtTime(eta)}`;
    if (this.tty) process.stderr.write(`\r${line}\x1b[K${done >= this.total ? '\n' : ''}`);
    else process.stderr.write(line + '\n');
  }
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
