/**
 * Charts from the server's chart endpoints, drawn with vega-embed.
 *
 * Every chart endpoint answers `{charts: [{id, title, spec, marks, note}]}`
 * with complete Vega-Lite specs (data inline): the same descriptions the
 * notebook panels draw, so no chart is written twice.  vega-embed is loaded
 * on the first chart only (a chunk of its own), so the sidebar itself stays
 * small.  A click on a mark whose datum carries `run_id` opens that run;
 * one with `model` shows that model in the sidebar.
 */
import { requestAPI } from './api';
import { h } from './dom';

export interface IChart {
  id: string;
  title: string;
  spec: Record<string, any>;
  /** How many data marks the chart draws (the tests count them in the SVG). */
  marks: number;
  note: string | null;
}

export interface IChartOptions {
  openRun: (id: string) => void;
  /** A mark of a model version was clicked (defaults to showing it in the sidebar's Models section). */
  openModel?: (name: string, version: number | null) => void;
}

type Embed = typeof import('vega-embed').default;
let embedding: Promise<Embed> | null = null;

/** Fetch vega in the background (the sidebar calls this when shown), so a first chart does not wait for it. */
export function prefetchCharts(): void {
  if (embedding) {
    return;
  }
  const idle = (window as any).requestIdleCallback ?? ((f: () => void) => window.setTimeout(f, 200));
  idle(() => void loadEmbed().then(warmUp, () => (embedding = null)));
}

/**
 * Draw one tiny layered chart off the page: the first chart vega draws pays for compiling its
 * parser, dataflow and SVG code paths (most of a first render), the user's first chart then does not.
 */
async function warmUp(embed: Embed): Promise<void> {
  const host = h('div', { style: 'position:absolute;left:-10000px;top:0;width:200px' });
  document.body.append(host);
  const values = [{ a: 1, b: 2, c: 'x' }, { a: 2, b: 1, c: 'y' }];
  const enc = { x: { field: 'a', type: 'quantitative' }, y: { field: 'b', type: 'quantitative' }, color: { field: 'c' } };
  try {
    const result = await embed(host, {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      data: { values },
      width: 'container',
      layer: [
        { mark: 'point', encoding: enc },
        { mark: 'line', encoding: { ...enc, detail: { field: 'c' } } },
        { mark: 'bar', encoding: { x: { field: 'c' }, y: { field: 'b', type: 'quantitative' } } },
        { mark: 'text', encoding: { ...enc, text: { field: 'c' } } },
        { mark: 'rule', encoding: { x: { field: 'a', type: 'quantitative' } } }
      ]
    } as any, { renderer: 'svg', actions: false, tooltip: true, config: themeConfig() as any });
    result.finalize();
  } catch {
    // a warm-up only: the real charts report their own errors
  } finally {
    host.remove();
  }
}

function loadEmbed(): Promise<Embed> {
  // One import for every chart; webpack puts vega in a chunk fetched on first use.
  embedding ??= import('vega-embed').then(m => m.default);
  return embedding;
}

/** A block per chart (title, drawing, note); the drawings fill in as vega renders them. */
export function chartList(charts: IChart[], options: IChartOptions, empty = 'nothing to draw yet'): HTMLElement {
  const list = h('div', { class: 'mlops-charts' });
  if (!charts.length) {
    list.append(h('p', { class: 'mlops-muted mlops-charts-empty' }, empty));
  }
  for (const chart of charts) {
    list.append(chartBlock(chart, options));
  }
  return list;
}

export function chartBlock(chart: IChart, options: IChartOptions): HTMLElement {
  return renderChart(chart, options).block;
}

/** The chart's block, and when its drawing is done (or failed, said in the block). */
export function renderChart(chart: IChart, options: IChartOptions): { block: HTMLElement; drawn: Promise<void> } {
  const view = h('div', { class: 'mlops-chart-view' });
  const block = h(
    'figure',
    { class: 'mlops-chart', dataset: { chart: chart.id, marks: String(chart.marks), state: 'drawing' } },
    h('figcaption', { class: 'mlops-chart-title' }, chart.title),
    view,
    // An empty chart's drawing already says why (its note repeats it).
    chart.note && chart.marks > 0 ? h('div', { class: 'mlops-muted mlops-chart-note' }, chart.note) : null
  );
  const drawn = draw(view, chart, options).then(
    () => {
      block.dataset.state = 'drawn';
    },
    error => {
      block.dataset.state = 'error';
      view.replaceChildren(h('p', { class: 'mlops-error' }, `cannot draw ${chart.id}: ${error?.message || error}`));
    }
  );
  return { block, drawn };
}

async function draw(host: HTMLElement, chart: IChart, options: IChartOptions): Promise<void> {
  const embed = await loadEmbed();
  const spec = themed(fitted(chart.spec));
  const result = await embed(host, spec as any, {
    renderer: 'svg',
    actions: false,
    tooltip: true
  });
  result.view.addEventListener('click', (_event: any, item: any) => {
    const datum = item?.datum;
    if (!datum) {
      return;
    }
    if (typeof datum.run_id === 'string' && datum.run_id) {
      hideTooltips(); // the run's tab takes the focus: a tooltip left over the sidebar would stay
      options.openRun(datum.run_id);
    } else if (typeof datum.model === 'string' && datum.model) {
      (options.openModel ?? showModel)(datum.model, typeof datum.version === 'number' ? datum.version : null);
    }
  });
  // A pointer over clickable marks: the cursor says so.
  result.view.addEventListener('mouseover', (_event: any, item: any) => {
    const datum = item?.datum;
    host.style.cursor = datum && (datum.run_id || datum.model) ? 'pointer' : '';
  });
}

/**
 * A single view without a width of its own takes the container's; a width the server chose
 * (a graph's layers, small multiples) is kept, and the view scrolls sideways when it is wider.
 */
function fitted(spec: Record<string, any>): Record<string, any> {
  const single = 'mark' in spec || 'layer' in spec;
  if (!single || (spec.width !== undefined && spec.width !== 'container')) {
    return spec;
  }
  return { ...spec, width: 'container', autosize: { type: 'fit-x', contains: 'padding' } };
}

/** Hide vega's tooltip: when its chart is replaced under the pointer, nothing else would. */
export function hideTooltips(): void {
  document.querySelectorAll('#vg-tooltip-element.visible').forEach(e => e.classList.remove('visible'));
}

/**
 * The spec with the theme's colours over its own config: a spec's config wins over vega-embed's,
 * and the server's carries light-theme defaults (for notebooks without this extension).  Colours
 * set on a mark (a drifted column's red) are meanings and stay.
 */
function themed(spec: Record<string, any>): Record<string, any> {
  const config: Record<string, any> = { ...(spec.config || {}) };
  for (const [key, value] of Object.entries(themeConfig())) {
    config[key] = value && typeof value === 'object' ? { ...(config[key] || {}), ...value } : value;
  }
  return { ...spec, config };
}

/** Axis and legend colours from the JupyterLab theme in force, so the dark theme reads too. */
function themeConfig(): Record<string, any> {
  const style = getComputedStyle(document.body);
  const v = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
  const text = v('--jp-ui-font-color1', '#333');
  const muted = v('--jp-ui-font-color2', '#666');
  const line = v('--jp-border-color2', '#ccc');
  const font = v('--jp-ui-font-family', 'sans-serif');
  return {
    background: null,
    font,
    title: { color: text },
    axis: { labelColor: muted, titleColor: text, domainColor: line, tickColor: line, gridColor: line, gridOpacity: 0.5 },
    legend: { labelColor: muted, titleColor: text },
    header: { labelColor: text, titleColor: text },
    text: { color: text }
  };
}

/** The model's entry (its version's, when known) in the sidebar's Models section, opened and scrolled into view. */
function showModel(name: string, version: number | null): void {
  const entry = document.querySelector<HTMLElement>(`#mlops-nb-sidebar .mlops-model[data-model="${CSS.escape(name)}"]`);
  if (!entry) {
    return;
  }
  const target = (version !== null && entry.querySelector<HTMLElement>(`.mlops-version[data-version="${version}"]`)) || entry;
  entry.closest('details')?.setAttribute('open', '');
  target.scrollIntoView({ block: 'nearest' });
  target.classList.add('mlops-flash');
  window.setTimeout(() => target.classList.remove('mlops-flash'), 2500);
}

/**
 * Charts fetched from one endpoint into a node that outlives the section redraws around it.
 *
 * `update()` re-reads the endpoint and redraws only when the answer changed, so the
 * sidebar's poll neither flickers nor re-runs vega for the same data.
 */
export class FetchedCharts {
  readonly node: HTMLElement;
  /** The last answer (with its `charts`), or null before the first or after an error. */
  data: any = null;

  constructor(
    private _endpoint: string,
    public query: Record<string, string | undefined>,
    private _options: IChartOptions,
    private _around: (data: any) => { before?: (HTMLElement | null)[]; after?: (HTMLElement | null)[] } = () => ({}),
    cls = '',
    private _empty = 'nothing to draw yet'
  ) {
    this.node = h('div', { class: `mlops-fetched-charts ${cls}`.trim() });
  }

  async update(): Promise<any> {
    let data: any;
    this.node.classList.add('mlops-busy');
    try {
      data = await requestAPI(this._endpoint, {}, this.query);
    } catch (error: any) {
      this.node.classList.remove('mlops-busy');
      this._sig = '';
      this.data = null;
      this.node.replaceChildren(h('p', { class: 'mlops-error' }, String(error.message || error)));
      return null;
    }
    this.node.classList.remove('mlops-busy');
    const sig = JSON.stringify([this.query, data]);
    if (sig !== this._sig) {
      this._sig = sig;
      this.data = data;
      hideTooltips();
      const { before = [], after = [] } = this._around(data);
      this.node.replaceChildren(...before.filter(isNode), chartList(data.charts || [], this._options, this._empty), ...after.filter(isNode));
    }
    return data;
  }

  private _sig = '';
}

function isNode(e: HTMLElement | null): e is HTMLElement {
  return e !== null;
}
