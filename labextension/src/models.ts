/**
 * The Models section: each registered model with its aliases (roll back), versions
 * (promote through the policy's gates) and, on request, its charts; the promotion
 * requests waiting for an approver.
 */
import { showErrorMessage } from '@jupyterlab/apputils';

import { post } from './api';
import { FetchedCharts, IChartOptions } from './charts';
import { askPromote, askReason } from './dialogs';
import { h, metricsText } from './dom';

export class ModelsView {
  constructor(
    private _options: IChartOptions,
    private _refresh: () => Promise<void>
  ) {}

  /** The models and the promotion requests waiting for approval. */
  render(data: any): HTMLElement[] {
    const requests = data.requests.length
      ? h(
          'div',
          { class: 'mlops-requests' },
          h('div', { class: 'mlops-subtitle' }, 'Waiting for approval'),
          data.requests.map((r: any) =>
            h(
              'div',
              { class: 'mlops-row mlops-request' },
              h('span', {}, `#${r.id} ${r.name} v${r.version} → @${r.alias} by ${r.requester}`),
              h('button', { class: 'jp-Button mlops-button mlops-approve', onclick: () => void this.approve(r) }, 'Approve…')
            )
          )
        )
      : null;
    return [
      ...(data.models.length ? data.models.map((m: any) => this.model(m)) : [h('p', { class: 'mlops-muted' }, 'no registered models (mlops_nb.register(...))')]),
      ...(requests ? [requests] : [])
    ];
  }

  /** Re-read the charts of the models whose charts are open. */
  async updateCharts(): Promise<void> {
    await Promise.all([...this._charts.values()].map(c => c.update()));
  }

  private model(model: any): HTMLElement {
    const aliases = Object.entries(model.aliases || {}) as [string, number][];
    const charts = this._charts.get(model.name);
    const entry: HTMLElement = h(
      'div',
      { class: 'mlops-model', dataset: { model: model.name } },
      h(
        'div',
        { class: 'mlops-row' },
        h('span', { class: 'mlops-name' }, model.name),
        h('span', { class: 'mlops-muted' }, model.description || ''),
        h(
          'button',
          { class: 'mlops-link-button mlops-model-charts-toggle', 'aria-pressed': String(!!charts), title: 'metrics across versions, alias history, monitor decisions', onclick: () => this.toggleModelCharts(model.name, entry) },
          'Charts'
        )
      ),
      charts ? charts.node : null,
      h(
        'div',
        { class: 'mlops-aliases' },
        aliases.length
          ? aliases.map(([alias, version]) =>
              h(
                'span',
                { class: 'mlops-alias', dataset: { alias } },
                `@${alias} → v${version} `,
                h('button', { class: 'mlops-link-button mlops-rollback', title: `Roll ${alias} back to its previous holder`, onclick: () => void this.rollback(model.name, alias, version) }, 'roll back')
              )
            )
          : h('span', { class: 'mlops-muted' }, 'no aliases')
      ),
      h(
        'ul',
        { class: 'mlops-list mlops-versions' },
        model.versions.map((v: any) =>
          h(
            'li',
            { class: 'mlops-version', dataset: { version: String(v.version) } },
            h(
              'div',
              { class: 'mlops-row' },
              h('span', { class: 'mlops-name' }, `v${v.version}`),
              h('span', { class: 'mlops-muted' }, (v.class_name || '').split('.').pop()),
              (v.aliases || []).map((a: string) => h('span', { class: 'mlops-chip mlops-chip-alias' }, `@${a}`)),
              h(
                'span',
                { class: 'mlops-actions' },
                v.run_id ? h('button', { class: 'mlops-link-button', title: 'open the training run', onclick: () => this._options.openRun(v.run_id) }, 'run') : null,
                h('button', { class: 'jp-Button mlops-button mlops-promote', onclick: () => void this.promote(model, v) }, 'Promote…')
              )
            ),
            h('div', { class: 'mlops-metrics' }, metricsText(v.metrics, 3)),
            v.warnings?.length ? h('ul', { class: 'mlops-warnings' }, v.warnings.map((w: any) => h('li', {}, '⚠ ', w.message))) : null
          )
        )
      )
    );
    return entry;
  }

  /** A model's charts (trend, aliases over time, monitor decisions) under its name, or hidden again. */
  private toggleModelCharts(name: string, entry: HTMLElement): void {
    const button = entry.querySelector('.mlops-model-charts-toggle');
    const open = this._charts.get(name);
    if (open) {
      open.node.remove();
      this._charts.delete(name);
      button?.setAttribute('aria-pressed', 'false');
      return;
    }
    const charts = new FetchedCharts(`charts/models/${encodeURIComponent(name)}`, {}, this._options, () => ({}), 'mlops-model-charts');
    this._charts.set(name, charts);
    button?.setAttribute('aria-pressed', 'true');
    entry.querySelector('.mlops-row')?.after(charts.node);
    charts.node.replaceChildren(h('p', { class: 'mlops-muted' }, 'Loading…'));
    void charts.update();
  }

  private async promote(model: any, version: any): Promise<void> {
    const aliases = Object.keys(model.aliases || {});
    const choice = await askPromote(model.name, version.version, aliases, aliases[0] || 'staging');
    if (!choice) {
      return;
    }
    try {
      const result = await post(`models/${encodeURIComponent(model.name)}/promote`, {
        version: version.version,
        alias: choice.alias,
        reason: choice.reason || undefined
      });
      if (result.status === 'pending_approval') {
        await showErrorMessage('Waiting for approval', `Request #${result.request_id}: ${model.name} v${result.version} → @${result.alias} needs an approver.`);
      }
    } catch (error: any) {
      await showErrorMessage('Promotion refused', gateText(error));
    }
    await this._refresh();
  }

  private async rollback(name: string, alias: string, version: number): Promise<void> {
    const reason = await askReason(`Roll back ${name}@${alias}?`, `@${alias} points at v${version}; it goes back to the version that held it before.`, 'Roll back');
    if (reason === null) {
      return;
    }
    try {
      await post(`models/${encodeURIComponent(name)}/rollback`, { alias, reason: reason || undefined });
    } catch (error: any) {
      await showErrorMessage('Rollback failed', error.message || String(error));
    }
    await this._refresh();
  }

  private async approve(request: any): Promise<void> {
    const comment = await askReason(
      `Approve request #${request.id}?`,
      `${request.name} v${request.version} → @${request.alias}, requested by ${request.requester}${request.reason ? `: ${request.reason}` : ''}.`,
      'Approve',
      'comment (kept with the approval)'
    );
    if (comment === null) {
      return;
    }
    try {
      await post(`requests/${request.id}/approve`, { comment: comment || undefined });
    } catch (error: any) {
      await showErrorMessage('Approval refused', gateText(error));
    }
    await this._refresh();
  }


  private _charts = new Map<string, FetchedCharts>();
}

function gateText(error: any): string {
  const gates = error?.body?.gates as any[] | undefined;
  if (!gates?.length) {
    return error.message || String(error);
  }
  const failed = gates.filter(g => !g.passed).map(g => `✗ ${g.gate}: ${g.detail}`);
  return [error.message, ...failed].join('\n');
}
