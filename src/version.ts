/** The package version, set by the build (scripts/build.mjs) from package.json. */
declare const __VERSION__: string;
export const VERSION: string = typeof __VERSION__ === 'string' ? __VERSION__ : '0.0.0-dev';
