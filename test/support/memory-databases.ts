/** Every test process starts its in-memory databases from the run's one initialised image (global-setup.ts). */
import { readFile } from "node:fs/promises";
import { inject } from "vitest";
import { startMemoryDatabasesFrom } from "../../src/db/client.js";

startMemoryDatabasesFrom(new Blob([await readFile(inject("memoryDatabaseImage"))]));
