/** Confirmation dialogs for registry and job actions. */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { h } from './dom';

export interface IPromoteValue {
  alias: string;
  reason: string;
}

/** Body of the "Promote" dialog: which alias, and why (kept in the audit trail). */
class PromoteForm extends Widget implements Dialog.IBodyWidget<IPromoteValue> {
  constructor(text: string, aliases: string[], initial: string) {
    super({ node: document.createElement('div') });
    this.addClass('mlops-dialog-form');
    const list = 'mlops-alias-choices';
    this._alias = h('input', {
      class: 'jp-mod-styled mlops-alias-input',
      type: 'text',
      value: initial,
      list,
      'aria-label': 'alias'
    });
    this._reason = h('input', {
      class: 'jp-mod-styled mlops-reason-input',
      type: 'text',
      placeholder: 'reason (kept in the audit trail)',
      'aria-label': 'reason'
    });
    this.node.append(
      h('p', {}, text),
      h('label', {}, 'Alias ', this._alias),
      h(
        'datalist',
        { id: list },
        aliases.map(a => h('option', { value: a }))
      ),
      h('label', {}, 'Reason ', this._reason),
      h(
        'p',
        { class: 'mlops-muted' },
        'The promotion policy (policy.toml beside the registry) applies; the move is audited under your Jupyter user.'
      )
    );
  }

  getValue(): IPromoteValue {
    return { alias: this._alias.value.trim(), reason: this._reason.value.trim() };
  }

  private _alias: HTMLInputElement;
  private _reason: HTMLInputElement;
}

class ReasonForm extends Widget implements Dialog.IBodyWidget<string> {
  constructor(text: string, placeholder: string) {
    super({ node: document.createElement('div') });
    this.addClass('mlops-dialog-form');
    this._input = h('input', {
      class: 'jp-mod-styled mlops-reason-input',
      type: 'text',
      placeholder,
      'aria-label': 'reason'
    });
    this.node.append(h('p', {}, text), this._input);
  }

  getValue(): string {
    return this._input.value.trim();
  }

  private _input: HTMLInputElement;
}

export async function askPromote(
  name: string,
  version: number,
  aliases: string[],
  initial: string
): Promise<IPromoteValue | null> {
  const result = await showDialog({
    title: `Promote ${name} v${version}`,
    body: new PromoteForm(
      `Point an alias of ${name} at version ${version}.`,
      aliases,
      initial
    ),
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: 'Promote', ariaLabel: 'Promote' })
    ]
  });
  if (!result.button.accept || !result.value || !result.value.alias) {
    return null;
  }
  return result.value;
}

/** A yes/no confirmation with an optional reason; null when cancelled. */
export async function askReason(
  title: string,
  text: string,
  accept: string,
  placeholder = 'reason (kept in the audit trail)'
): Promise<string | null> {
  const result = await showDialog({
    title,
    body: new ReasonForm(text, placeholder),
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: accept, ariaLabel: accept })
    ]
  });
  return result.button.accept ? (result.value ?? '') : null;
}
