/** JupyterLab plugin: the "MLOps" left sidebar of mlops_nb. */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabIcon } from '@jupyterlab/ui-components';

import { RunDetails } from './details';
import { chartRendererFactory } from './mime';
import { MlopsPanel } from './panel';

const ICON = new LabIcon({
  name: 'mlops-nb:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<circle cx="5" cy="6" r="2.5"/><circle cx="19" cy="6" r="2.5"/><circle cx="12" cy="18" r="2.5"/>' +
    '<path d="M6.3 7.8l4.6 8 1.3-.8-4.6-8zM17.7 7.8l-4.6 8-1.3-.8 4.6-8zM7.5 5.3h9v1.4h-9z"/></g></svg>'
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mlops-nb:sidebar',
  description: 'Runs, models, drift checks and notebook jobs of the mlops_nb registry, beside the notebook.',
  autoStart: true,
  optional: [INotebookTracker, ILabShell, IRenderMimeRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker | null,
    labShell: ILabShell | null,
    rendermime: IRenderMimeRegistry | null
  ) => {
    const details = new Map<string, MainAreaWidget<RunDetails>>();
    const openRun = (id: string): void => {
      const open = details.get(id);
      if (open && !open.isDisposed) {
        app.shell.activateById(open.id);
        void open.content.load();
        return;
      }
      const widget = new MainAreaWidget({ content: new RunDetails(id, openRun) });
      widget.id = `mlops-run-details-${id}`;
      widget.title.label = widget.content.title.label;
      widget.content.title.changed.connect(() => (widget.title.label = widget.content.title.label));
      widget.title.icon = ICON;
      widget.title.closable = true;
      widget.disposed.connect(() => details.delete(id));
      details.set(id, widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
    };
    // Charts displayed by mlops_nb in notebook outputs: the sidebar's renderer, clicks open runs.
    rendermime?.addFactory(chartRendererFactory({ openRun }), 0);
    const panel = new MlopsPanel({
      currentNotebook: () => tracker?.currentWidget?.context.path ?? null,
      openRun
    });
    panel.title.icon = ICON;
    app.shell.add(panel, 'left', { rank: 650 });
    tracker?.currentChanged.connect(() => panel.notebookChanged());
    labShell?.currentChanged.connect(() => panel.notebookChanged());
  }
};

export default plugin;
