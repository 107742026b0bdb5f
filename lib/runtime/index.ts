// The application-side data-plane API: tenant context per transaction and the connection router.
export * from './tenant-context';
export * from './with-tenant';
export * from './secret-resolver';
export * from './router';
export * from './tenant-status-listener';
// What a call whose connection the server ended rejects with.
export { ConnectionLostError, DatabaseUnavailableError } from '../db/lost-connections';
