/** Host-side filters: the session-ID table the anonymity layer's receiver decides on. */
export { SessionTable, type SessionTableOptions, type SidRegistry } from './session-table.js';
