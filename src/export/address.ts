/** HOST:PORT parsing lives below every layer (util/hostport.ts); export's collectors use it from there. */
export { type HostPort, parseHostPort } from '../util/hostport.js';
