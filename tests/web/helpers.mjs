// Shared by the node known-answer tests: vector loading and module paths.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (rel) => fileURLToPath(new URL(rel, import.meta.url));

export function vectors(name) {
  return JSON.parse(readFileSync(here(`../vectors/${name}`), "utf-8"));
}

/** onepw.json vectors of one "function". */
export function onepw(fn) {
  return vectors("onepw.json").vectors.filter((v) => v.function === fn);
}

export const JS = new URL("../../server/web/static/js/", import.meta.url).href;

export async function load(module) {
  return import(new URL(module, JS).href);
}
