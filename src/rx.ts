/**
 * The two RxJS classes the sources need, from their own modules: importing
 * the `rxjs` index costs ~50 ms of startup (every operator), which is most of
 * a short CLI run. These are the very classes the index exports, so streams
 * interoperate with any `rxjs` 7 the application imports.
 */
export { Observable } from 'rxjs/internal/Observable';
export { Subject } from 'rxjs/internal/Subject';
