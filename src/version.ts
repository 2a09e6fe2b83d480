/** cogd's own version, as `cogd --version`, STAC items and logs give it. */
export const COGD_VERSION = '0.1.0';
