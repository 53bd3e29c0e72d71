/**
 * A small Prometheus registry (text exposition format 0.0.4) with no
 * dependency: counters, gauges read at scrape time, and histograms.
 *
 * Label values come from fixed sets chosen by the gateway (route names,
 * status codes, reasons), never from request data, so the series count is
 * bounded. Nothing here ever holds plaintext, keys or tenant payloads.
 */

/** ADR-604 latency buckets: 0.1, 0.25, 0.5, 1, 2.5, 5, 10 ms (+Inf is implicit), in seconds. */
export const ADR604_BUCKETS_SECONDS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01];

type Labels = Readonly<Record<string, string>>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function labelKey(labelNames: readonly string[], labels: Labels): string {
  let key = '';
  for (const n of labelNames) {
    const v = labels[n];
    if (v === undefined) throw new Error(`metric label ${n} is missing`);
    key += `${n}="${escapeLabel(v)}",`;
  }
  return key.slice(0, -1);
}

const NEEDS_ESCAPE = /[\\\n"]/;

function escapeLabel(v: string): string {
  // Label values are route names and status codes: almost never anything to escape (one test, no copies).
  if (!NEEDS_ESCAPE.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function fmt(n: number): string {
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (Number.isNaN(n)) return 'NaN';
  return String(n);
}

interface Metric {
  readonly name: string;
  render(out: string[]): void;
}

/** A monotonically increasing counter with fixed label names. */
export class Counter implements Metric {
  readonly #values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {}

  /** Adds `by` (default 1, must be ≥ 0) to the series named by `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${this.name} cannot decrease`);
    const key = labelKey(this.labelNames, labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  /** Current value of one series (0 when never incremented). */
  get(labels: Labels = {}): number {
    return this.#values.get(labelKey(this.labelNames, labels)) ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    if (this.labelNames.length === 0 && this.#values.size === 0) out.push(`${this.name} 0`);
    for (const [key, v] of this.#values) out.push(`${this.name}${key ? `{${key}}` : ''} ${fmt(v)}`);
  }
}

/** A gauge or counter whose value is read from a callback at scrape time (e.g. from the key cache). */
export class CallbackMetric implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'gauge' | 'counter',
    readonly read: () => number | undefined,
  ) {}

  render(out: string[]): void {
    const v = this.read();
    if (v === undefined) return;
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`, `${this.name} ${fmt(v)}`);
  }
}

interface HistogramSeries {
  counts: number[];
  sum: number;
  count: number;
}

/** A histogram with fixed upper bounds (seconds) and label names. */
export class Histogram implements Metric {
  readonly #series = new Map<string, HistogramSeries>();
  readonly bounds: readonly number[];
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
    bounds: readonly number[] = ADR604_BUCKETS_SECONDS,
  ) {
    for (let i = 1; i < bounds.length; i++) {
      if (!((bounds[i] as number) > (bounds[i - 1] as number))) {
        throw new Error(`histogram ${name}: buckets must increase`);
      }
    }
    this.bounds = [...bounds];
  }

  /** Records one observation of `value` seconds. */
  observe(labels: Labels, value: number): void {
    const key = labelKey(this.labelNames, labels);
    let s = this.#series.get(key);
    if (!s) {
      s = { counts: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    // Non-cumulative per bucket; render accumulates.
    let i = 0;
    while (i < this.bounds.length && value > (this.bounds[i] as number)) i++;
    if (i < this.bounds.length) s.counts[i] = (s.counts[i] as number) + 1;
    s.sum += value;
    s.count++;
  }

  /** Number of observations of one series. */
  count(labels: Labels = {}): number {
    return this.#series.get(labelKey(this.labelNames, labels))?.count ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const [key, s] of this.#series) {
      const sep = key ? ',' : '';
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i] as number;
        out.push(`${this.name}_bucket{${key}${sep}le="${fmt(this.bounds[i] as number)}"} ${acc}`);
      }
      out.push(`${this.name}_bucket{${key}${sep}le="+Inf"} ${s.count}`);
      const braces = key ? `{${key}}` : '';
      out.push(`${this.name}_sum${braces} ${fmt(s.sum)}`, `${this.name}_count${braces} ${s.count}`);
    }
  }
}

/** A set of metrics rendered together. Names are unique. */
export class Registry {
  readonly #metrics = new Map<string, Metric>();

  /** Adds a metric; throws when the name is malformed or already registered. */
  register<M extends Metric>(metric: M): M {
    if (!NAME.test(metric.name)) throw new Error(`invalid metric name ${metric.name}`);
    if (this.#metrics.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  /** The exposition text (Content-Type `text/plain; version=0.0.4`). */
  render(): string {
    const out: string[] = [];
    for (const m of this.#metrics.values()) m.render(out);
    out.push('');
    return out.join('\n');
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
