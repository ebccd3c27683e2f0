// The embedded default policy of the single executable (scripts/package.mjs), which is one bundled
// file with no policies/ beside it: esbuild replaces FLOODGATE_EMBEDDED_DEFAULT_POLICY with the text
// of policies/default.yaml. In the npm package it is not defined and the file is read instead.
// Kept free of imports: `status` and `list` read the name without loading the policy parser.
declare const FLOODGATE_EMBEDDED_DEFAULT_POLICY: string | undefined;

export const EMBEDDED_POLICY_TEXT: string | undefined =
  typeof FLOODGATE_EMBEDDED_DEFAULT_POLICY === 'string' ? FLOODGATE_EMBEDDED_DEFAULT_POLICY : undefined;

/** What the single executable calls its default policy where others show a file name. */
export const EMBEDDED_POLICY_NAME = '(embedded default policy)';
