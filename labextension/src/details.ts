/** A run in full, opened in the main area when a run is clicked in the sidebar. */
import { Widget } from '@lumino/widgets';

import { requestAPI } from './api';
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
    void this.load();
  }

  async load(): Promise<void> {
    this.node.replaceChildren(h('p', { class: 'mlops-muted' }, 'Loading…'));
    try {
      const run = await requestAPI(`runs/${this.runId}`);
      this.title.label = `Run ${shortId(run.id)} ${run.name || ''}`.trim();
      this.node.replaceChildren(...this.render(run));
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
    if (run.lineage?.root) {
      out.push(h('h3', {}, 'Lineage'), h('ul', { class: 'mlops-lineage' }, this.node_(run.lineage.root)));
    }
    out.push(
      h('h3', {}, 'Source'),
      run.source ? h('pre', { class: 'mlops-source' }, run.source) : h('p', { class: 'mlops-muted' }, 'no cell source (recorded outside a tracked cell)')
    );
    return out;
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
