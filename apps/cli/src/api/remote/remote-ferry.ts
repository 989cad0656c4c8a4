import type { Ferry } from '../../service/ferry.js';
import { errorFromReply, type ApiErrorBody } from '../errors.js';
import { pathParams, ROUTES, type Route } from '../routes.js';
import type { ApiEndpoint } from './endpoint.js';
import { apiRequest } from './http.js';

/**
 * Ferry through ferry's API: each call is its route (routes.ts): path parameters from the input,
 * the other fields as the query (GET, DELETE) or a JSON body. An error answer is raised as the CLI
 * raises it without the API (errors.ts): same message, same exit code; 401 and 403 exit 3.
 */
export function remoteFerry(ep: ApiEndpoint): Ferry {
  const call = async (route: Route<keyof Ferry>, input: Record<string, unknown>): Promise<unknown> => {
    const rest: Record<string, unknown> = { ...input };
    let path = route.path;
    for (const p of pathParams(route.path)) {
      path = path.replace(`:${p}`, encodeURIComponent(String(input[p])));
      delete rest[p];
    }
    const inQuery = route.method === 'GET' || route.method === 'DELETE';
    if (inQuery) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(rest)) if (v !== undefined) q.set(k, String(v));
      if (q.size) path += `?${q.toString()}`;
    }
    const res = await apiRequest(ep, route.method, path, inQuery ? undefined : rest);
    if (res.status >= 200 && res.status < 300) return res.body;
    const error = (res.body as { error?: Partial<ApiErrorBody> } | undefined)?.error;
    if (res.status === 404 && route.nullable && error?.code === 'NOT_FOUND') return null;
    throw errorFromReply(res.status, error);
  };
  const f: Record<string, (i: Record<string, unknown>) => Promise<unknown>> = {};
  for (const [name, route] of Object.entries(ROUTES)) f[name] = (i) => call(route as Route<keyof Ferry>, i);
  return f as unknown as Ferry;
}
