/**
 * Calls to the mlops_nb server extension (`/mlops-nb/api/...`).
 *
 * ServerConnection adds the token / XSRF headers; errors arrive as
 * `{"error": message}` and are thrown as `ApiError` with that message.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: any
  ) {
    super(message);
  }
}

export async function requestAPI<T = any>(
  endpoint: string,
  init: RequestInit = {},
  query: Record<string, string | undefined> = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') {
      params.append(key, value);
    }
  }
  const qs = params.toString();
  const url =
    URLExt.join(settings.baseUrl, 'mlops-nb', 'api', endpoint) +
    (qs ? '?' + qs : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(`Cannot reach the Jupyter server: ${error}`, 0, null);
  }
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message =
      (data && (data.error || data.message)) ||
      `${response.status} ${response.statusText}`;
    throw new ApiError(message, response.status, data);
  }
  return data as T;
}

export function post<T = any>(endpoint: string, body: any): Promise<T> {
  return requestAPI<T>(endpoint, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}
