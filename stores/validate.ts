/**
 * Both stores validate create bodies themselves before writing anything: the HTTP edge
 * validates too, but a Lua script that fails half-way keeps its earlier writes, so a
 * batch is only all-or-nothing if no item can fail inside the script.
 */

import { CreateRequestBody, MAX_BATCH } from '../protocol/index.js';
import { StoreError } from './errors.js';

const Bodies = CreateRequestBody.array().min(1).max(MAX_BATCH);

export function validateBodies(bodies: unknown): CreateRequestBody[] {
  const parsed = Bodies.safeParse(bodies);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StoreError(
      'invalid_request',
      `invalid request body at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}
