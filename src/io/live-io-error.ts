/**
 * Why live capture or injection could not start, in words that say what to do. These are setup
 * failures (addon, interface, privileges, filter), thrown once when a capture or sink is opened;
 * per-packet failures are counted in stats instead.
 */

export type LiveIoErrorKind =
  /** The optional native addon (cap or raw-socket) is not installed or not built. */
  | 'addon-missing'
  /** No interface of that name. */
  | 'no-such-interface'
  /** Needs root or CAP_NET_RAW / CAP_NET_ADMIN. */
  | 'permission'
  /** The BPF filter expression does not compile. */
  | 'bad-filter'
  /** Anything else the addon or the kernel refused. */
  | 'failed';

export class LiveIoError extends Error {
  override readonly name = 'LiveIoError';

  constructor(
    readonly kind: LiveIoErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The fix for missing privileges. File capabilities must go on the real binary, not a symlink to it,
 * hence readlink.
 */
export const PRIVILEGE_HINT =
  'run as root or grant CAP_NET_RAW,CAP_NET_ADMIN: setcap cap_net_raw,cap_net_admin=eip $(readlink -f $(which node))';

const PERMISSION_TEXT = /operation not permitted|permission denied|don't have permission|EPERM|EACCES/i;
const NO_DEVICE_TEXT = /no such device/i;

/** The message of whatever was thrown (addons throw plain Errors whose message is strerror text). */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True when an addon's error text means the process lacks privileges. */
export function isPermissionError(err: unknown): boolean {
  return PERMISSION_TEXT.test(errorText(err));
}

/**
 * A LiveIoError for a failure of `action` ("live capture on eth0", "raw IPv4 socket"): privileges and
 * vanished interfaces get their fix spelled out; anything else keeps the addon's words.
 */
export function explainFailure(action: string, err: unknown, iface?: string): LiveIoError {
  const text = errorText(err);
  if (isPermissionError(err)) {
    return new LiveIoError('permission', `${action} is not permitted (${text}): ${PRIVILEGE_HINT}`, {
      cause: err,
    });
  }
  if (iface !== undefined && NO_DEVICE_TEXT.test(text)) {
    return new LiveIoError('no-such-interface', `${action} failed: no interface '${iface}' (${text})`, {
      cause: err,
    });
  }
  return new LiveIoError('failed', `${action} failed: ${text}`, { cause: err });
}

/** The error for an interface name that is not among `available`. */
export function noSuchInterface(action: string, iface: string, available: string[]): LiveIoError {
  const list = available.length ? available.join(', ') : 'none visible to this process';
  return new LiveIoError(
    'no-such-interface',
    `${action}: no interface '${iface}'; available: ${list} (see 'ip link')`,
  );
}
