/** "413 Payload Too Large" status lines for uWS, cached per status. */
import { STATUS_CODES } from 'node:http';

const cache = new Map<number, string>();

export function statusLine(status: number): string {
  let line = cache.get(status);
  if (!line) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    cache.set(status, line);
  }
  return line;
}
