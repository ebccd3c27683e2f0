/** Format notes copied into every expected.json (filled in from inspecting real captures). */
export const FORMAT_NOTES: string[] = [];
