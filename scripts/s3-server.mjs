#!/usr/bin/env node
// A local S3 protocol server (s3rver) on loopback, for tests, the demo and the benchmark.
//   node --openssl-legacy-provider scripts/s3-server.mjs [--port N] [--dir DIR]
// Prints one JSON line {"endpoint": "...", "port": N, "dir": "..."} once it listens; stops on
// SIGTERM/SIGINT. s3rver's ListObjectsV2 continuation tokens use DES, hence the legacy provider.
// Credentials: access key S3RVER, secret S3RVER.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import S3rver from 's3rver';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, dir: { type: 'string' } } });
const dir = values.dir ?? mkdtempSync(path.join(os.tmpdir(), 'cogd-s3-'));
const server = new S3rver({ address: '127.0.0.1', port: Number(values.port), directory: dir, silent: true });
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ endpoint: `http://127.0.0.1:${port}`, port, dir })}\n`);
const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
