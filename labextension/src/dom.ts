/** Tiny DOM helpers: the sidebar is plain DOM inside Lumino widgets. */

type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, any> = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key === 'class') {
      el.className = String(value);
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : '-';
}

export function when(ts: number | null | undefined): string {
  if (!ts) {
    return '-';
  }
  const date = new Date(ts * 1000);
  const seconds = (Date.now() - date.getTime()) / 1000;
  const future = seconds < 0;
  const s = Math.abs(seconds);
  let text: string;
  if (s < 60) {
    text = `${Math.round(s)}s`;
  } else if (s < 3600) {
    text = `${Math.round(s / 60)} min`;
  } else if (s < 86400 * 2) {
    text = `${Math.round(s / 3600)} h`;
  } else {
    return date.toLocaleString();
  }
  return future ? `in ${text}` : `${text} ago`;
}

export function fullTime(ts: number | null | undefined): string {
  return ts ? new Date(ts * 1000).toLocaleString() : '-';
}

export function num(value: any): string {
  if (typeof value !== 'number') {
    return value === null || value === undefined ? '-' : String(value);
  }
  if (Number.isInteger(value)) {
    return String(value);
  }
  return Math.abs(value) >= 1e4 || Math.abs(value) < 1e-3
    ? value.toExponential(2)
    : value.toPrecision(4).replace(/\.?0+$/, '');
}

export function metricsText(metrics: Record<string, any>, max = 3): string {
  const entries = Object.entries(metrics || {});
  const shown = entries
    .slice(0, max)
    .map(([k, v]) => `${k}=${num(v)}`)
    .join(' ');
  return entries.length > max ? `${shown} …` : shown;
}

export function badge(status: string | null | undefined): HTMLElement {
  const s = status || 'none';
  return h('span', { class: `mlops-badge mlops-status-${s}` }, s);
}
