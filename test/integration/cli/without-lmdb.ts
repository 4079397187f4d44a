/**
 * Loaded with `node --import` before the `mocra` command: makes the optional package `lmdb`
 * impossible to import, as on a machine where it was never installed.
 */
import { register } from 'node:module';

const hook = `
export async function resolve(specifier, context, next) {
  if (specifier === 'lmdb' || specifier.startsWith('lmdb/')) {
    const error = new Error("Cannot find package 'lmdb'");
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
