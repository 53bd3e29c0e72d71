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

/**
 * The series of one metric, found by their label values. An update walks a
 * tree of maps keyed by the values in label-name order (route names and
 * status codes: strings whose hash V8 keeps), so the exposition key
 * (`a="x",b="y"`) is built once per series, not once per update.
 */
class SeriesTable<S> {
  /** Exposition key → series, in creation order (what render lists). */
  readonly byKey = new Map<string, S>();
  readonly #tree = new Map<string | undefined, unknown>();
  constructor(
    readonly labelNames: readonly string[],
    readonly make: () => S,
  ) {}

  /** The series of `labels`, made on first use; throws when a label is missing. */
  at(labels: Labels): S {
    const names = this.labelNames;
    const last = names.length - 1;
    let level = this.#tree;
    for (let i = 0; i < last; i++) {
      const next = level.get(labels[names[i] as string]) as Map<string | undefined, unknown> | undefined;
      if (next === undefined) return this.#add(labels);
      level = next;
    }
    const s = level.get(last < 0 ? '' : labels[names[last] as string]) as S | undefined;
    return s === undefined ? this.#add(labels) : s;
  }

  /** The series of `labels` if it exists (scrapes and tests). */
  peek(labels: Labels): S | undefined {
    return this.byKey.get(labelKey(this.labelNames, labels));
  }

  #add(labels: Labels): S {
    const key = labelKey(this.labelNames, labels); // throws on a missing label: nothing is added
    for (const n of this.labelNames) {
      // The tree compares values as they are: a number and its text would be two series of one key.
      if (typeof labels[n] !== 'string') throw new Error(`metric label ${n} is not a string`);
    }
    const s = this.make();
    this.byKey.set(key, s);
    const names = this.labelNames;
    let level = this.#tree;
    for (let i = 0; i < names.length - 1; i++) {
      const v = labels[names[i] as string];
      let next = level.get(v) as Map<string | undefined, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(v, next);
      }
      level = next;
    }
    level.set(names.length === 0 ? '' : labels[names[names.length - 1] as string], s);
    return s;
  }
}

/** A monotonically increasing counter with fixed label names. */
export class Counter implements Metric {
  readonly #values: SeriesTable<{ n: number }>;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {
    this.#values = new SeriesTable(labelNames, () => ({ n: 0 }));
  }

  /** Adds `by` (default 1, must be ≥ 0) to the series named by `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${this.name} cannot decrease`);
    this.#values.at(labels).n += by;
  }

  /** Current value of one series (0 when never incremented). */
  get(labels: Labels = {}): number {
    return this.#values.peek(labels)?.n ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    if (this.labelNames.length === 0 && this.#values.byKey.size === 0) out.push(`${this.name} 0`);
    for (const [key, v] of this.#values.byKey) out.push(`${this.name}${key ? `{${key}}` : ''} ${fmt(v.n)}`);
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
  readonly #series: SeriesTable<HistogramSeries>;
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
    const n = bounds.length;
    this.#series = new SeriesTable(labelNames, () => ({ counts: new Array<number>(n).fill(0), sum: 0, count: 0 }));
  }

  /** Records one observation of `value` seconds. */
  observe(labels: Labels, value: number): void {
    const s = this.#series.at(labels);
    // Non-cumulative per bucket; render accumulates.
    let i = 0;
    while (i < this.bounds.length && value > (this.bounds[i] as number)) i++;
    if (i < this.bounds.length) s.counts[i] = (s.counts[i] as number) + 1;
    s.sum += value;
    s.count++;
  }

  /** Number of observations of one series. */
  count(labels: Labels = {}): number {
    return this.#series.peek(labels)?.count ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const [key, s] of this.#series.byKey) {
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
