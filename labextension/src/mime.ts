/**
 * Charts in notebook outputs: `application/vnd.mlops-nb.chart+json`, the chart object that
 * `mlops_nb.charts.Chart` displays (beside Vega-Lite and a static SVG for front ends without
 * this extension), drawn by the same renderer as the sidebar, so a click on a run's mark opens
 * that run's tab here too.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IChart, IChartOptions, renderChart } from './charts';

export const CHART_MIME = 'application/vnd.mlops-nb.chart+json';

class ChartOutput extends Widget implements IRenderMime.IRenderer {
  constructor(private _options: IChartOptions) {
    super();
    this.addClass('mlops-chart-output');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this._chart = model.data[CHART_MIME] as unknown as IChart;
    // A container width is measured when drawn: an output not yet on the page waits until it is.
    if (this.isAttached) {
      await this.draw();
    }
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this._chart && !this.node.firstChild) {
      void this.draw();
    }
  }

  private async draw(): Promise<void> {
    const { block, drawn } = renderChart(this._chart!, this._options);
    this.node.replaceChildren(block);
    await drawn;
  }

  private _chart: IChart | null = null;
}

/** The factory to add to JupyterLab's rendermime registry (rank 0: before its own Vega-Lite renderer). */
export function chartRendererFactory(options: IChartOptions): IRenderMime.IRendererFactory {
  return {
    // Vega's expressions run in its own interpreter, never as JavaScript: as safe as JupyterLab's Vega renderer.
    safe: true,
    mimeTypes: [CHART_MIME],
    defaultRank: 0,
    createRenderer: () => new ChartOutput(options)
  };
}
