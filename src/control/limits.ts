/** Unread results a control handle holds at most (bytes); see file.ts and batch.ts. */
export const OUTPUT_LIMIT = 1 << 20;
