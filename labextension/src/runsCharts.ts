/**
 * The Runs section's "Charts" view: scatter, parallel coordinates, bars and stepped
 * metrics of the runs the filter selects (`charts/runs`), with the x / y / metric
 * pickers filled from the axes the server found.
 */
import { FetchedCharts, IChartOptions } from './charts';
import { h, num } from './dom';

type Axis = 'x' | 'y' | 'metric';

export class RunsCharts {
  readonly node: HTMLElement;

  constructor(
    private _filter: () => string,
    options: IChartOptions
  ) {
    const pick = (axis: Axis, label: string) =>
      h('select', {
        class: `mlops-axis mlops-axis-${axis}`,
        'aria-label': label,
        title: label,
        onchange: (e: Event) => {
          this._chosen[axis] = (e.target as HTMLSelectElement).value;
          void this.update();
        }
      });
    this._selects = { x: pick('x', 'x: a param'), y: pick('y', 'y: a metric'), metric: pick('metric', 'metric of the parallel and bar charts') };
    this._summary = h('span', { class: 'mlops-muted mlops-charts-summary' });
    this._charts = new FetchedCharts('charts/runs', {}, options, data => {
      this.fill(data);
      return {};
    });
    this.node = h(
      'div',
      { class: 'mlops-runs-charts' },
      h(
        'div',
        { class: 'mlops-axes' },
        h('label', {}, 'x ', this._selects.x),
        h('label', {}, 'y ', this._selects.y),
        h('label', {}, 'metric ', this._selects.metric)
      ),
      this._summary,
      this._charts.node
    );
  }

  /** Re-read the charts for the current filter and axes; the answer (or null on error). */
  async update(): Promise<any> {
    this._charts.query = { filter: this._filter() || undefined, ...this._chosen };
    return this._charts.update();
  }

  /** The pickers show the axes the server offers and the ones it chose. */
  private fill(data: any): void {
    const params: string[] = data.axes?.params || [];
    const metrics: string[] = data.axes?.metrics || [];
    const set = (axis: Axis, names: string[], chosen: string | null | undefined) => {
      const select = this._selects[axis];
      select.replaceChildren(...(names.length ? names : ['-']).map(n => h('option', { value: n === '-' ? '' : n }, n)));
      select.value = chosen || '';
      select.disabled = !names.length;
      this._chosen[axis] = chosen || undefined;
    };
    set('x', params, data.x);
    set('y', metrics, data.y);
    set('metric', metrics, data.metric);
    const total = data.total ?? 0;
    const shown = data.shown ?? total;
    this._summary.textContent = shown < total ? `${num(shown)} of ${num(total)} runs drawn` : `${num(total)} run${total === 1 ? '' : 's'}`;
  }

  private _selects: Record<Axis, HTMLSelectElement>;
  private _chosen: Partial<Record<Axis, string>> = {};
  private _summary: HTMLElement;
  private _charts: FetchedCharts;
}
