/** A run in full, opened in the main area when a run is clicked in the sidebar. */
import { Widget } from '@lumino/widgets';

import { requestAPI } from './api';
import { FetchedCharts, IChartOptions } from './charts';
import { badge, fullTime, h, num, shortId } from './dom';

export type OpenRun = (id: string) => void;

export class RunDetails extends Widget {
  constructor(
    readonly runId: string,
    private _open: OpenRun
  ) {
    super();
    this.addClass('mlops-run-details');
    this.id = `mlops-run-${runId}`;
    this.title.label = `Run ${shortId(runId)}`;
    this.title.closable = true;
    this._charting = { openRun: id => this._open(id) };
    void this.load();
  }

  async load(): Promise<void> {
    this.node.replaceChildren(h('p', { class: 'mlops-muted' }, 'Loading…'));
    try {
      const run = await requestAPI(`runs/${this.runId}`);
      this.title.label = `Run ${shortId(run.id)} ${run.name || ''}`.trim();
      this.node.replaceChildren(...this.render(run));
      await Promise.all([this._history?.update(), this.lineage(run)]);
    } catch (error: any) {
      this.node.replaceChildren(h('p', { class: 'mlops-error' }, String(error.message || error)));
    }
  }

  private render(run: any): HTMLElement[] {
    const out: HTMLElement[] = [];
    out.push(
      h('h2', {}, run.name || '(unnamed run)', ' ', badge(run.status)),
      keyValues({
        'run id': run.id,
        project: run.project,
        started: fullTime(run.start_time),
        duration: run.duration !== null && run.duration !== undefined ? `${num(run.duration)} s` : '-',
        notebook: run.notebook_path || 'unknown',
        'execution count': run.execution_count ?? '-',
        user: run.user || '-',
        git: run.git_commit ? `${run.git_commit.slice(0, 10)}${run.git_dirty ? ' (dirty)' : ''}` : '-',
        'job run': run.job_run_id ? shortId(run.job_run_id) : '-'
      })
    );
    if (run.warnings?.length) {
      out.push(
        h('h3', {}, 'Warnings'),
        h('ul', { class: 'mlops-warnings' }, run.warnings.map((w: any) => h('li', {}, '⚠ ', w.message)))
      );
    }
    if (run.error) {
      out.push(h('h3', {}, 'Error'), h('pre', { class: 'mlops-error' }, run.error));
    }
    out.push(h('h3', {}, 'Params'), keyValues(run.params, true));
    out.push(h('h3', {}, 'Metrics'), keyValues(run.metrics, true));
    out.push(h('h3', {}, 'Metric history'), this.history().node);
    out.push(h('h3', {}, 'Inputs'), this.dataTable(run.inputs, 'produced by', 'produced_by'));
    out.push(h('h3', {}, 'Outputs'), this.dataTable(run.outputs, 'read by', 'read_by'));
    out.push(
      h('h3', {}, 'Models'),
      run.models?.length
        ? h(
            'table',
            { class: 'mlops-table' },
            h('tr', {}, h('th', {}, 'name'), h('th', {}, 'class'), h('th', {}, 'digest'), h('th', {}, 'registered')),
            run.models.map((m: any) =>
              h(
                'tr',
                {},
                h('td', {}, m.name),
                h('td', {}, (m.class_name || '').split('.').pop()),
                h('td', { class: 'mlops-mono' }, shortId(m.digest)),
                h('td', {}, (m.registered || []).join(', ') || '-')
              )
            )
          )
        : h('p', { class: 'mlops-muted' }, 'none')
    );
    this._lineage = new FetchedCharts('charts/lineage', { ref: run.id }, this._charting, data => ({ after: [marked(data.nodes)] }), 'mlops-lineage-graph');
    out.push(h('h3', {}, 'Lineage'), this._lineage.node);
    out.push(
      h('h3', {}, 'Source'),
      run.source ? h('pre', { class: 'mlops-source' }, run.source) : h('p', { class: 'mlops-muted' }, 'no cell source (recorded outside a tracked cell)')
    );
    return out;
  }

  /** Metric histories and the comparison with the parent run or a chosen baseline (`charts/runs/ID`). */
  private history(): FetchedCharts {
    const input = h('input', {
      class: 'jp-mod-styled mlops-baseline-input',
      type: 'search',
      placeholder: 'baseline run id (default: the parent run)',
      'aria-label': 'baseline run id',
      value: this._baseline,
      onkeydown: (e: KeyboardEvent) => {
        if (e.key === 'Enter') {
          this._baseline = input.value.trim();
          this._history!.query = { baseline: this._baseline || undefined };
          void this._history!.update();
        }
      }
    });
    this._history = new FetchedCharts(
      `charts/runs/${encodeURIComponent(this.runId)}`,
      { baseline: this._baseline || undefined },
      this._charting,
      data => ({ after: [h('h3', {}, 'Compared with'), input, this.compare(data)] }),
      'mlops-run-history',
      'no metric of this run was logged with steps'
    );
    return this._history;
  }

  private compare(data: any): HTMLElement {
    const base = data.baseline || {};
    if (!base.run_id) {
      return h('p', { class: 'mlops-muted mlops-compare' }, 'no baseline: this run was not derived from another; type a run id above');
    }
    const why = base.why === 'parent' ? 'the run it was derived from' : 'chosen baseline';
    const params: any[] = data.compare?.params || [];
    const metrics: any[] = data.compare?.metrics || [];
    const row = (cells: (HTMLElement | string)[], cls = '') => h('tr', { class: cls }, cells.map(c => (typeof c === 'string' ? h('td', {}, c) : c)));
    const delta = (d: any) => h('td', { class: typeof d === 'number' && d !== 0 ? (d > 0 ? 'mlops-up' : 'mlops-down') : '' }, typeof d === 'number' ? (d > 0 ? '+' : '') + num(d) : '-');
    return h(
      'div',
      { class: 'mlops-compare' },
      h('p', {}, `${why}: `, this.runLink(base.run_id, base.name)),
      h(
        'table',
        { class: 'mlops-table mlops-compare-table' },
        h('tr', {}, h('th', {}, ''), h('th', {}, 'this run'), h('th', {}, 'baseline'), h('th', {}, 'Δ')),
        params.length ? h('tr', {}, h('th', { colspan: '4', class: 'mlops-subtitle' }, 'params')) : null,
        params.map(p => row([h('th', {}, p.name), num(p.run), num(p.baseline), p.changed ? h('td', { class: 'mlops-changed' }, 'changed') : ''], p.changed ? 'mlops-row-changed' : '')),
        metrics.length ? h('tr', {}, h('th', { colspan: '4', class: 'mlops-subtitle' }, 'metrics')) : null,
        metrics.map(m => row([h('th', {}, m.name), num(m.run), num(m.baseline), delta(m.delta)]))
      )
    );
  }

  /** The lineage graph; the indented tree of the run record when the graph cannot be had. */
  private async lineage(run: any): Promise<void> {
    const data = await this._lineage?.update();
    if (!data && run.lineage?.root && this._lineage) {
      this._lineage.node.append(h('ul', { class: 'mlops-lineage' }, this.node_(run.lineage.root)));
    }
  }

  private dataTable(rows: any[], label: string, key: string): HTMLElement {
    if (!rows?.length) {
      return h('p', { class: 'mlops-muted' }, 'none');
    }
    return h(
      'table',
      { class: 'mlops-table' },
      h('tr', {}, h('th', {}, 'name'), h('th', {}, 'version'), h('th', {}, 'shape'), h('th', {}, label)),
      rows.map(d =>
        h(
          'tr',
          {},
          h('td', {}, d.name || '-'),
          h('td', { class: 'mlops-mono' }, shortId(d.digest)),
          h('td', {}, Array.isArray(d.shape) ? d.shape.join('×') : d.shape ?? '-'),
          h('td', {}, (d[key] || []).length ? (d[key] as any[]).map(r => this.runLink(r.id, r.name)) : '-')
        )
      )
    );
  }

  private runLink(id: string, name?: string | null): HTMLElement {
    return h('a', { class: 'mlops-link', href: '#', onclick: (e: Event) => { e.preventDefault(); this._open(id); } }, `${name || 'run'} ${shortId(id)} `);
  }

  private node_(node: any): HTMLElement {
    const label =
      node.kind === 'run'
        ? this.runLink(node.id, node.label)
        : h('span', {}, h('span', { class: 'mlops-kind' }, node.kind), ' ', node.label);
    return h(
      'li',
      {},
      label,
      node.children?.length ? h('ul', {}, node.children.map((c: any) => this.node_(c))) : null
    );
  }

  private _charting: IChartOptions;
  private _history: FetchedCharts | null = null;
  private _lineage: FetchedCharts | null = null;
  private _baseline = '';
}

/** A line under the graph naming the stale and hidden inputs it marks. */
function marked(nodes: any[] | undefined): HTMLElement | null {
  const odd = (nodes || []).filter(n => n.stale || n.hidden);
  if (!odd.length) {
    return null;
  }
  return h(
    'ul',
    { class: 'mlops-warnings mlops-lineage-marks' },
    odd.map(n => h('li', {}, '⚠ ', `${n.label} (${n.kind}): ${[n.stale ? 'changed after it was read' : '', n.hidden ? 'read without being passed in (hidden input)' : ''].filter(Boolean).join(', ')}`))
  );
}

function keyValues(values: Record<string, any>, empty = false): HTMLElement {
  const entries = Object.entries(values || {});
  if (!entries.length && empty) {
    return h('p', { class: 'mlops-muted' }, 'none');
  }
  return h(
    'table',
    { class: 'mlops-table mlops-kv' },
    entries.map(([k, v]) =>
      h('tr', {}, h('th', {}, k), h('td', {}, typeof v === 'object' && v !== null ? JSON.stringify(v) : num(v)))
    )
  );
}
