/** merge(): where forked branches or several sources join; records pass unchanged. */
import { z } from 'zod';
import { defineFilter } from '../registry.js';

export const mergeFilter = defineFilter({
  name: 'merge',
  description: 'join point for several sources or branches: (conntrack() | dns()) -> merge()',
  params: z.object({}).strict(),
  step: () => (r, emit) => emit(r),
});
