/**
 * One error base for the whole library (docs/architecture.md#errors): a stable `code`
 * (`FG_ERR_…`), the operation that failed, the errno when the kernel gave one,
 * and the original error as `cause`.
 */
export type ErrorCode =
  | 'FG_ERR_NETLINK'
  | 'FG_ERR_DECODE'
  | 'FG_ERR_SYSCALL'
  | 'FG_ERR_CLOSED'
  | 'FG_ERR_TIMEOUT'
  | 'FG_ERR_PERMISSION'
  | 'FG_ERR_NETNS'
  | 'FG_ERR_INVALID_ARGUMENT'
  | 'FG_ERR_INVALID_STATE'
  | 'FG_ERR_FIREWALL'
  | 'FG_ERR_BUSY'
  | 'FG_ERR_GRAPH'
  | 'FG_ERR_DENIED'
  /** A frame that does not follow flowgrabd's protocol (either direction). */
  | 'FG_ERR_PROTOCOL'
  /** A failure nobody caught (flowgrabd closes the client it happened for). */
  | 'FG_ERR_INTERNAL';

/** Details of a FlowgrabError: the operation, the errno, the cause. */
export interface FlowgrabErrorOptions {
  op?: string;
  errno?: number;
  cause?: unknown;
}

/** The base of every error flowgrab throws: a stable `code` (`FG_ERR_…`), the operation, the errno when the kernel gave one. */
export class FlowgrabError extends Error {
  readonly code: ErrorCode;
  readonly op?: string;
  readonly errno?: number;

  constructor(code: ErrorCode, message: string, opts: FlowgrabErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    if (opts.op !== undefined) this.op = opts.op;
    if (opts.errno !== undefined) this.errno = opts.errno;
  }
}

/** Bytes that do not form what the decoder expected; `offset` points at the trouble. */
export class DecodeError extends FlowgrabError {
  readonly offset: number;
  constructor(message: string, offset: number, op = 'decode') {
    super('FG_ERR_DECODE', `${op}: ${message} at byte ${offset}`, { op });
    this.offset = offset;
  }
}
