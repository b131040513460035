/**
 * The Drift section's list of saved checks: a badge that says what the check
 * decided, the columns, and on a click the check's charts (reference vs current
 * histograms, share of drifted columns over time) from `charts/drift`.
 */
import { FetchedCharts, IChartOptions } from './charts';
import { h, num, when } from './dom';

export interface IBadge {
  text: string;
  level: 'bad' | 'warn' | 'ok';
}

/** The server's badge; computed the same way when an older server sends none. */
export function driftBadge(check: any): IBadge {
  if (check.badge?.text) {
    return check.badge;
  }
  const drifted = check.n_drifted ?? 0;
  if (check.dataset_drift) {
    return { text: 'drift detected', level: 'bad' };
  }
  if (drifted > 0) {
    return { text: `${drifted} of ${check.n_columns ?? '?'} columns drifted`, level: 'warn' };
  }
  return { text: 'no drift', level: 'ok' };
}

export class DriftChecks {
  constructor(private _options: IChartOptions) {}

  /** The list of checks; open ones keep their charts node (redrawn only when they change). */
  list(checks: any[]): HTMLElement {
    const known = new Set(checks.map(c => c.id));
    for (const id of this._open.keys()) {
      if (!known.has(id)) {
        this._open.delete(id);
      }
    }
    return h('ul', { class: 'mlops-list' }, checks.map(c => this.check(c)));
  }

  /** Re-read the charts of the open checks. */
  async update(): Promise<void> {
    await Promise.all([...this._open.values()].map(c => c.update()));
  }

  private check(c: any): HTMLElement {
    const b = driftBadge(c);
    const open = this._open.get(c.id);
    const item = h(
      'li',
      { class: `mlops-check mlops-check-${b.level}${open ? ' mlops-open' : ''}`, dataset: { check: String(c.id) } },
      h(
        'div',
        {
          class: 'mlops-row mlops-clickable',
          role: 'button',
          tabindex: '0',
          'aria-expanded': String(!!open),
          title: 'histograms and drift over time (click again to hide)',
          onclick: () => this.toggle(c, item),
          onkeydown: (e: KeyboardEvent) => {
            if (e.key === 'Enter' || e.key === ' ') {
              e.preventDefault();
              this.toggle(c, item);
            }
          }
        },
        h('span', { class: `mlops-badge mlops-drift-badge mlops-level-${b.level}` }, b.text),
        h('span', { class: 'mlops-name' }, `#${c.id} vs ${c.reference}`),
        h('span', { class: 'mlops-when mlops-muted' }, when(c.created_at))
      ),
      h('div', { class: 'mlops-muted' }, `${c.n_drifted} of ${c.n_columns} columns drifted${c.monitor ? ` · monitor ${c.monitor}` : ''}`),
      h(
        'div',
        { class: 'mlops-columns' },
        c.columns.map((col: any) =>
          h(
            'span',
            { class: `mlops-chip${col.drifted ? ' mlops-chip-drifted' : ''}`, title: `${col.test || col.status} score ${num(col.score)} (threshold ${num(col.threshold)})${col.note ? '\n' + col.note : ''}` },
            col.column
          )
        )
      ),
      open ? open.node : null
    );
    return item;
  }

  private toggle(c: any, item: HTMLElement): void {
    const open = this._open.get(c.id);
    if (open) {
      open.node.remove();
      this._open.delete(c.id);
      item.classList.remove('mlops-open');
      item.querySelector('.mlops-row')?.setAttribute('aria-expanded', 'false');
      return;
    }
    const charts = new FetchedCharts('charts/drift', { check: String(c.id), monitor: c.monitor || undefined }, this._options, () => ({}), 'mlops-drift-charts');
    this._open.set(c.id, charts);
    item.classList.add('mlops-open');
    item.querySelector('.mlops-row')?.setAttribute('aria-expanded', 'true');
    item.append(charts.node);
    charts.node.replaceChildren(h('p', { class: 'mlops-muted' }, 'Loading…'));
    void charts.update();
  }

  private _open = new Map<number, FetchedCharts>();
}
