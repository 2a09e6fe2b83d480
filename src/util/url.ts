/**
 * URLs as cogd may show them: scheme, host and path only. A webhook's user name, password and query
 * string (where tokens usually travel) never reach a log, `cogd status` or `cogd config`.
 */

/** `https://user:pw@host/path?token=x` → `https://host/path`. */
export function safeUrl(href: string): string {
  try {
    const url = new URL(href);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

/** Like safeUrl, saying what was left out. */
export function shownUrl(href: string): string {
  try {
    const url = new URL(href);
    const hidden = [
      ...(url.username !== '' || url.password !== '' ? ['credentials'] : []),
      ...(url.search !== '' ? ['query'] : []),
    ];
    return `${safeUrl(href)}${hidden.length === 0 ? '' : ` (${hidden.join(' and ')} hidden)`}`;
  } catch {
    return '(not a URL)';
  }
}

/** The parts of a URL that must never be shown: its password, user name and query, decoded and not. */
export function secretsOf(href: string): string[] {
  try {
    const url = new URL(href);
    const parts = [url.password, url.username, url.search.slice(1), ...url.searchParams.values()];
    const decoded = parts.map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    });
    return [...new Set([...parts, ...decoded])].filter((part) => part.length >= 3);
  } catch {
    return [];
  }
}
