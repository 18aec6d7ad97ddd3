// Master URLs the node and the client accept: http://, https://, and the
// master's unix socket ([slapproxy] unix_socket) as unix:/run/slapos/master.sock
// (the whole path is the socket's; the API is at its root) or, as Python's
// requests-unixsocket spells it, http+unix://%2Frun%2Fslapos%2Fmaster.sock/
// (in a .cfg file every % is doubled, ConfigParser's interpolation). Over the
// socket the master knows the caller by its uid (SO_PEERCRED), not by a
// certificate.

export interface MasterEndpoint {
  /** The URL requests are made to (http://localhost/… for a socket), ending in "/". */
  base: string;
  /** The unix socket to connect to, when the URL names one. */
  socketPath?: string;
}

/** Where to send requests for a master URL; throws with a clear message on a bad one. Pure. */
export function masterEndpoint(masterUrl: string): MasterEndpoint {
  if (masterUrl.startsWith('unix:')) {
    const socketPath = decodeURIComponent(new URL(masterUrl).pathname).replace(/(.)\/+$/, '$1');
    if (!socketPath.startsWith('/') || socketPath === '/') throw new Error(`${masterUrl}: a unix: master URL names the socket's absolute path, e.g. unix:/run/slapos/master.sock`);
    return { base: 'http://localhost/', socketPath };
  }
  const text = masterUrl.endsWith('/') ? masterUrl : `${masterUrl}/`;
  if (!text.startsWith('http+unix://')) return { base: text };
  const parsed = new URL(text);
  const socketPath = decodeURIComponent(parsed.hostname);
  if (!socketPath.startsWith('/')) {
    throw new Error(`${masterUrl}: an http+unix:// URL names the socket's absolute path with each "/" as %2F, e.g. http+unix://%2Frun%2Fslapos%2Fmaster.sock/`);
  }
  return { base: `http://localhost${parsed.pathname}${parsed.search}`, socketPath };
}

/** The unix: master URL of a socket path. Pure. */
export function unixMasterUrl(socketPath: string): string {
  return `unix:${socketPath}`;
}
