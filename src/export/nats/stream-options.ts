/**
 * The stream a NATS sink creates when it is missing. Apart from stream.ts so
 * that the published types of the sink's options never name the optional
 * @nats-io packages (a user without them must still compile against flowgrab).
 */
export interface StreamOptions {
  /** Stream name (default `flowgrab`). */
  name: string;
  /** Replicas when it is created (default 1; 3 in a three-node cluster). */
  replicas: number;
  /** Duplicate window when it is created (default 2 min, JetStream's own default). */
  duplicateWindowMs: number;
  /** Subjects when it is created (default the template's first token and everything below: `flowgrab.>`). */
  subjects?: string[];
  template?: string;
}
