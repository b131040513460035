/**
 * The "MLOps" sidebar: This notebook, Runs, Models, Drift, Alerts and Jobs.
 *
 * Polls the server extension every few seconds, but only while the panel is
 * visible and the browser tab is shown.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import { Message } from '@lumino/messaging';

import { post, requestAPI } from './api';
import { FetchedCharts, hideTooltips, IChartOptions, prefetchCharts } from './charts';
import { askReason } from './dialogs';
import { badge, h, metricsText, shortId, when } from './dom';
import { DriftChecks } from './drift';
import { ModelsView } from './models';
import { RunsCharts } from './runsCharts';

export const POLL_MS = 5000;

export interface IPanelOptions {
  /** Path of the notebook in focus (relative to the server root), or null. */
  currentNotebook: () => string | null;
  openRun: (id: string) => void;
}

interface ISection {
  root: HTMLDetailsElement;
  body: HTMLElement;
  count: HTMLElement;
  /** What the body shows now: a poll that brings the same data leaves the DOM alone. */
  sig: string;
}

export class MlopsPanel extends Widget {
  constructor(private _options: IPanelOptions) {
    super();
    this.id = 'mlops-nb-sidebar';
    this.addClass('mlops-panel');
    this.title.caption = 'MLOps';

    this._status = h('div', { class: 'mlops-registry mlops-muted' });
    this._spool = h('div', { class: 'mlops-spool-banner', role: 'status', hidden: true });
    const refresh = h('button', { class: 'jp-Button mlops-button mlops-refresh', title: 'Refresh now', onclick: () => void this.refresh() }, '↻');
    this._filter = h('input', {
      class: 'jp-mod-styled mlops-filter',
      type: 'search',
      placeholder: "metrics.accuracy > 0.9 and status = 'finished'",
      'aria-label': 'filter runs',
      onkeydown: (e: KeyboardEvent) => {
        if (e.key === 'Enter') {
          this._runsPage = [];
          void this.refresh();
        }
      }
    });
    this.node.append(
      h('div', { class: 'mlops-header' }, h('span', { class: 'mlops-title' }, 'MLOps'), refresh),
      this._spool,
      this._status
    );
    this._charting = { openRun: id => this._options.openRun(id) };
    this._runsCharts = new RunsCharts(() => this._filter.value.trim(), this._charting);
    this._drift = new DriftChecks(this._charting);
    this._models = new ModelsView(this._charting, () => this.refresh());
    const view = (mode: 'list' | 'charts', label: string) =>
      h('button', { class: `mlops-view-button mlops-view-${mode}`, 'aria-pressed': mode === 'list' ? 'true' : 'false', onclick: () => this.showRunsAs(mode) }, label);
    this._runsToggle = h('div', { class: 'mlops-view-toggle', role: 'group', 'aria-label': 'show runs as' }, view('list', 'List'), view('charts', 'Charts'));
    this._sections = {
      notebook: this.section('notebook', 'This notebook'),
      runs: this.section('runs', 'Runs', h('div', { class: 'mlops-runs-toolbar' }, this._filter, this._runsToggle)),
      models: this.section('models', 'Models'),
      drift: this.section('drift', 'Drift'),
      alerts: this.section('alerts', 'Alerts'),
      jobs: this.section('jobs', 'Jobs')
    };
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && this.isVisible) {
        void this.refresh();
      }
    });
  }

  /** Re-read everything shown (each section reports its own errors). */
  async refresh(poll = false): Promise<void> {
    if (this._busy) {
      this._again ||= !poll; // a filter entered while a slow answer was awaited is not lost; a poll is
      return;
    }
    this._busy = true;
    try {
      const info = await requestAPI('registry').catch(e => ({ error: e.message }));
      if (info.error) {
        this._status.textContent = info.error;
        return;
      }
      this.showSpool(info.spool);
      const where = info.store_url.length > 52 ? '…' + info.store_url.slice(-50) : info.store_url;
      this._status.textContent = info.exists ? where : `no registry yet at ${where}: run a %%mlops track cell`;
      this._status.title = `${info.store_url}\nacting as ${info.user}`;
      if (!info.exists) {
        for (const s of Object.values(this._sections)) {
          s.body.replaceChildren(h('p', { class: 'mlops-muted' }, 'nothing recorded yet'));
          s.count.textContent = '';
        }
        return;
      }
      await Promise.all(
        (Object.keys(this.renderers) as (keyof MlopsPanel['_sections'])[]).map(key => this.guard(key, this.renderers[key]))
      );
    } finally {
      this._busy = false;
      if (this._again) {
        this._again = false;
        void this.refresh();
      }
    }
  }

  /** The banner while records of this machine wait in the local spool for the registry; hidden when none do. */
  private showSpool(spool: any): void {
    const count = spool?.count || 0;
    this._spool.hidden = !count;
    if (!count) {
      this._spool.replaceChildren();
      return;
    }
    // Runs when the records carry run ids; a monitor's decision waits as a record of no run.
    const n = spool.runs || count;
    const what = `${n} ${spool.runs ? 'run' : 'record'}${n === 1 ? ' is' : 's are'}`;
    this._spool.replaceChildren(
      `⚠ ${what} waiting in the local spool: registry unreachable: ${spool.reason || 'unknown'}. `,
      'They are written when it answers (',
      h('code', {}, 'mlops-nb status'),
      ').'
    );
    this._spool.title = spool.line || '';
  }

  /** The notebook in focus changed. */
  notebookChanged(): void {
    if (this.isVisible) {
      void this.guard('notebook', () => this.renderNotebook());
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    prefetchCharts();
    void this.refresh();
    this._timer = window.setInterval(() => {
      if (!document.hidden) {
        void this.refresh(true);
      }
    }, POLL_MS);
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    window.clearInterval(this._timer);
    this._timer = 0;
  }

  dispose(): void {
    window.clearInterval(this._timer);
    super.dispose();
  }

  // ---- sections ---------------------------------------------------------------------
  private section(key: string, label: string, ...extra: HTMLElement[]): ISection {
    const count = h('span', { class: 'mlops-count' });
    const body = h('div', { class: 'mlops-section-body' });
    const root = h(
      'details',
      { class: `mlops-section mlops-section-${key}`, open: true, dataset: { section: key } },
      h('summary', {}, label, ' ', count),
      ...extra,
      body
    );
    this.node.append(root);
    const section: ISection = { root, body, count, sig: '' };
    root.addEventListener('toggle', () => {
      if (root.open && this.isVisible) {
        section.sig = '';
        void this.guard(key as keyof MlopsPanel['_sections'], this.renderers[key as keyof MlopsPanel['_sections']]);
      }
    });
    return section;
  }

  private async guard(key: keyof MlopsPanel['_sections'], render: () => Promise<void>): Promise<void> {
    const section = this._sections[key];
    if (!section.root.open && key !== 'notebook') {
      return; // a closed section is not fetched
    }
    try {
      await render();
    } catch (error: any) {
      section.sig = '';
      section.body.replaceChildren(h('p', { class: 'mlops-error' }, String(error.message || error)));
    }
  }

  private async renderNotebook(): Promise<void> {
    const s = this._sections.notebook;
    const path = this._options.currentNotebook();
    if (!path) {
      s.count.textContent = '';
      s.body.replaceChildren(h('p', { class: 'mlops-muted' }, 'open a notebook to see the runs it recorded'));
      return;
    }
    const data = await requestAPI('notebook-runs', {}, { path, max_results: '30' });
    if (this._pipeline?.query.notebook !== path) {
      this._pipeline = new FetchedCharts('charts/pipeline', { notebook: path }, this._charting, () => ({}), 'mlops-pipeline');
      s.sig = '';
    }
    const pipeline = this._pipeline;
    if (this.unchanged(s, path, data)) {
      return;
    }
    if (data.runs.length) {
      await pipeline.update();
    }
    s.count.textContent = `(${data.runs.length})`;
    s.body.replaceChildren(
      h('div', { class: 'mlops-muted mlops-path' }, path),
      ...(data.runs.length ? [pipeline.node, this.runList(data.runs, true)] : [h('p', { class: 'mlops-muted' }, 'no runs recorded from this notebook yet')])
    );
  }

  /** The Runs section as a list (paged) or as charts of the same filtered runs. */
  private showRunsAs(mode: 'list' | 'charts'): void {
    this._runsView = mode;
    hideTooltips();
    this._runsToggle.querySelectorAll('button').forEach(button => {
      button.setAttribute('aria-pressed', String(button.classList.contains(`mlops-view-${mode}`)));
    });
    this._sections.runs.sig = '';
    void this.guard('runs', () => this.renderRuns());
  }

  private async renderRuns(): Promise<void> {
    const s = this._sections.runs;
    const filter = this._filter.value.trim();
    const data = await requestAPI('runs', {}, { filter, max_results: '25' });
    if (this._runsView === 'charts') {
      // The charts are redrawn from a new answer only when the newest matching runs changed: on
      // 10,000 runs an answer costs the server far more than this page of the list.
      const probe = JSON.stringify([filter, data]);
      if (s.body.firstChild !== this._runsCharts.node) {
        s.body.replaceChildren(this._runsCharts.node);
        this._chartsProbe = '';
      }
      if (probe !== this._chartsProbe) {
        this._chartsProbe = probe;
        const answer = await this._runsCharts.update();
        s.count.textContent = answer ? `(${answer.total})` : '';
      }
      return;
    }
    if (this._runsView !== 'list' || this.unchanged(s, filter, data)) {
      return; // switched to charts while the list was read
    }
    this._runsPage = data.runs;
    this._runsToken = data.next_page_token;
    s.count.textContent = `(${data.runs.length}${data.next_page_token ? '+' : ''})`;
    s.body.replaceChildren(
      data.runs.length ? this.runList(data.runs, false) : h('p', { class: 'mlops-muted' }, filter ? 'no run matches' : 'no runs yet'),
      ...(this._runsToken ? [h('button', { class: 'jp-Button mlops-button mlops-more', onclick: () => void this.moreRuns() }, 'more…')] : [])
    );
  }

  private async moreRuns(): Promise<void> {
    const data = await requestAPI('runs', {}, { filter: this._filter.value.trim(), max_results: '25', page_token: this._runsToken || undefined });
    this._runsToken = data.next_page_token;
    this._runsPage = this._runsPage.concat(data.runs);
    const s = this._sections.runs;
    s.sig = '';
    s.body.replaceChildren(
      this.runList(this._runsPage, false),
      ...(this._runsToken ? [h('button', { class: 'jp-Button mlops-button mlops-more', onclick: () => void this.moreRuns() }, 'more…')] : [])
    );
  }

  private runList(runs: any[], withWarnings: boolean): HTMLElement {
    return h(
      'ul',
      { class: 'mlops-list mlops-runs' },
      runs.map(run =>
        h(
          'li',
          {
            class: 'mlops-run',
            dataset: { runId: run.id },
            title: `${run.id}\n${run.notebook_path || ''}`,
            onclick: () => this._options.openRun(run.id)
          },
          h(
            'div',
            { class: 'mlops-row' },
            badge(run.status),
            h('span', { class: 'mlops-name' }, run.name || shortId(run.id)),
            h('span', { class: 'mlops-when mlops-muted' }, when(run.start_time))
          ),
          h('div', { class: 'mlops-metrics' }, h('span', { class: 'mlops-muted' }, shortId(run.id)), ' ', metricsText(run.metrics)),
          (withWarnings || run.warnings?.length) && run.warnings?.length
            ? h('ul', { class: 'mlops-warnings' }, run.warnings.map((w: any) => h('li', {}, '⚠ ', w.message)))
            : null
        )
      )
    );
  }

  private async renderModels(): Promise<void> {
    const s = this._sections.models;
    const data = await requestAPI('models');
    if (this.unchanged(s, data)) {
      return;
    }
    await this._models.updateCharts();
    s.count.textContent = `(${data.models.length})`;
    s.body.replaceChildren(...this._models.render(data));
  }

  private async renderDrift(): Promise<void> {
    const s = this._sections.drift;
    const data = await requestAPI('drift', {}, { limit: '10' });
    if (this.unchanged(s, data)) {
      return;
    }
    await this._drift.update();
    s.count.textContent = `(${data.checks.length})`;
    s.body.replaceChildren(data.checks.length ? this._drift.list(data.checks) : h('p', { class: 'mlops-muted' }, 'no saved drift checks (report.save())'));
  }

  /** What monitors decided (retrained, promoted, kept the champion, errors) and why. */
  private async renderAlerts(): Promise<void> {
    const s = this._sections.alerts;
    const data = await requestAPI('alerts', {}, { limit: '20' });
    if (this.unchanged(s, data)) {
      return;
    }
    s.count.textContent = `(${data.alerts.length})`;
    s.body.replaceChildren(
      data.alerts.length
        ? h(
            'ul',
            { class: 'mlops-list' },
            data.alerts.map((a: any) =>
              h(
                'li',
                { class: 'mlops-alert', dataset: { alert: String(a.id) } },
                h(
                  'div',
                  { class: 'mlops-row' },
                  h('span', { class: `mlops-badge ${a.severity === 'info' ? 'mlops-status-finished' : 'mlops-status-failed'}` }, a.kind),
                  h('span', { class: 'mlops-name' }, `${a.monitor}: ${a.decision || ''} ${a.model ? `${a.model}:${a.version}` : ''}`),
                  h('span', { class: 'mlops-when mlops-muted' }, when(a.created_at))
                ),
                h('div', { class: 'mlops-muted' }, a.message || '')
              )
            )
          )
        : h('p', { class: 'mlops-muted' }, 'no alerts (monitors: mlops-nb monitor add …)')
    );
  }

  private async renderJobs(): Promise<void> {
    const s = this._sections.jobs;
    const data = await requestAPI('schedules');
    const histories = await Promise.all(
      data.schedules.map((job: any) =>
        this._history.has(job.name) ? requestAPI(`schedules/${encodeURIComponent(job.name)}/history`, {}, { last: '10' }) : null
      )
    );
    if (this.unchanged(s, data, histories)) {
      return;
    }
    s.count.textContent = `(${data.schedules.length})`;
    const items = data.schedules.map((job: any, i: number) => {
        const history = histories[i];
        return h(
          'li',
          { class: 'mlops-job', dataset: { schedule: job.name } },
          h(
            'div',
            { class: 'mlops-row' },
            badge(job.paused ? 'paused' : job.last_status || 'never'),
            h('span', { class: 'mlops-name' }, job.name),
            h('span', { class: 'mlops-mono mlops-muted' }, job.cron)
          ),
          h('div', { class: 'mlops-muted' }, `last ${job.last_slot ? when(job.last_slot) : 'never'} · next ${job.paused ? 'paused' : when(job.next_time)}`),
          h(
            'div',
            { class: 'mlops-row' },
            h('button', { class: 'jp-Button mlops-button mlops-trigger', onclick: () => void this.trigger(job.name) }, 'Run now'),
            h('button', { class: 'mlops-link-button mlops-history-toggle', onclick: () => this.toggleHistory(job.name) }, this._history.has(job.name) ? 'hide history' : 'history')
          ),
          history
            ? h(
                'table',
                { class: 'mlops-table mlops-history' },
                history.firings.length
                  ? history.firings.map((f: any) =>
                      h('tr', {}, h('td', {}, when(f.slot)), h('td', {}, badge(f.status)), h('td', {}, `${f.attempts} attempt${f.attempts === 1 ? '' : 's'}`), h('td', { class: 'mlops-muted' }, (f.error || '').slice(0, 80)))
                    )
                  : h('tr', {}, h('td', { class: 'mlops-muted' }, 'not fired yet'))
              )
            : null
        );
      });
    s.body.replaceChildren(items.length ? h('ul', { class: 'mlops-list' }, items) : h('p', { class: 'mlops-muted' }, 'no schedules (mlops-nb schedule add NB --cron ...)'));
  }

  private unchanged(s: ISection, ...parts: any[]): boolean {
    // Relative times ("5 min ago") still move on: the same data is redrawn once a minute.
    const sig = JSON.stringify(parts) + '|' + Math.floor(Date.now() / 60000);
    if (s.sig === sig) {
      return true;
    }
    s.sig = sig;
    return false;
  }

  private toggleHistory(name: string): void {
    if (this._history.has(name)) {
      this._history.delete(name);
    } else {
      this._history.add(name);
    }
    void this.guard('jobs', () => this.renderJobs());
  }

  private async trigger(name: string): Promise<void> {
    const reason = await askReason(`Run ${name} now?`, 'The running `mlops-nb scheduler` fires it at its next tick, with the schedule\'s timeout and retries.', 'Run now');
    if (reason === null) {
      return;
    }
    try {
      await post(`schedules/${encodeURIComponent(name)}/trigger`, { reason: reason || undefined });
      this._history.add(name);
    } catch (error: any) {
      await showErrorMessage('Cannot run now', error.message || String(error));
    }
    await this.refresh();
  }

  private renderers: Record<keyof MlopsPanel['_sections'], () => Promise<void>> = {
    notebook: () => this.renderNotebook(),
    runs: () => this.renderRuns(),
    models: () => this.renderModels(),
    drift: () => this.renderDrift(),
    alerts: () => this.renderAlerts(),
    jobs: () => this.renderJobs()
  };
  private _sections: Record<'notebook' | 'runs' | 'models' | 'drift' | 'alerts' | 'jobs', ISection>;
  private _status: HTMLElement;
  private _spool: HTMLElement;
  private _filter: HTMLInputElement;
  private _timer = 0;
  private _busy = false;
  private _again = false;
  private _runsPage: any[] = [];
  private _runsToken: string | null = null;
  private _history = new Set<string>();
  private _charting: IChartOptions;
  private _runsCharts: RunsCharts;
  private _runsToggle: HTMLElement;
  private _runsView: 'list' | 'charts' = 'list';
  private _chartsProbe = '';
  private _models: ModelsView;
  private _drift: DriftChecks;
  private _pipeline: FetchedCharts | null = null;
}
