import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { executeTemplate as t } from "./go-template.js";

const data = {
  containers: [
    {
      id: "abc123",
      state: "CONTAINER_RUNNING",
      metadata: { name: "web" },
      labels: { app: "web", tier: "front" },
      n: 3,
    },
    { id: "def456", state: "CONTAINER_EXITED", metadata: { name: "job" }, labels: {}, n: 0 },
  ],
  empty: [],
};

describe("-o go-template", () => {
  it("fields, range over lists and maps (sorted keys), range variables", () => {
    assert.equal(
      t("{{range .containers}}{{.id}} {{.metadata.name}}\n{{end}}", data),
      "abc123 web\ndef456 job\n",
    );
    assert.equal(
      t("{{range $k, $v := (index .containers 0).labels}}{{$k}}={{$v}};{{end}}", data),
      "app=web;tier=front;",
    );
    assert.equal(t("{{range $i, $c := .containers}}{{$i}}:{{$c.id}} {{end}}", data), "0:abc123 1:def456 ");
    assert.equal(t("{{range .empty}}x{{else}}none{{end}}", data), "none");
    assert.equal(t("{{.missing}}", data), "<no value>");
    assert.equal(t("{{$.empty}}", data), "[]");
  });

  it("if / else if / else, with, comparisons and logic", () => {
    const tpl =
      '{{range .containers}}{{if eq .state "CONTAINER_RUNNING"}}up{{else if gt .n 1}}many{{else}}down{{end}} {{end}}';
    assert.equal(t(tpl, data), "up down ");
    assert.equal(t("{{range .containers}}{{if and .labels (not .n)}}a{{else}}b{{end}}{{end}}", data), "bb");
    assert.equal(
      t('{{range .containers}}{{if or (eq .n 0) (ne .id "abc123")}}y{{else}}n{{end}}{{end}}', data),
      "ny",
    );
    assert.equal(
      t("{{with .containers}}{{len .}}{{end}} {{with .empty}}x{{else}}empty{{end}}", data),
      "2 empty",
    );
    assert.equal(t('{{if eq "b" "a" "b"}}any{{end}}', data), "any");
  });

  it("index, len, json, printf, print, pipelines, variables, case functions", () => {
    assert.equal(t('{{index .containers 1 "id"}}', data), "def456");
    assert.equal(t('{{index (index .containers 0).labels "app"}}', data), "web");
    assert.equal(t("{{len .containers}} {{len .empty}}", data), "2 0");
    assert.equal(t("{{json (index .containers 1).labels}}", data), "{}");
    assert.equal(t("{{.containers | len}}", data), "2");
    assert.equal(
      t('{{range .containers}}{{printf "%-8s|%5d|%q" .metadata.name .n .id}}\n{{end}}', data),
      'web     |    3|"abc123"\njob     |    0|"def456"\n',
    );
    assert.equal(
      t('{{printf "%.3s %v %%" .containers.0.id 1}}', { containers: { 0: { id: "abcdef" } } }),
      "abc 1 %",
    );
    assert.equal(t('{{print "a" 1}} {{println "b"}}', {}), "a 1 b\n");
    assert.equal(t("{{$n := len .containers}}{{$n}}", data), "2");
    assert.equal(t('{{upper "abc"}} {{"XY" | lower}} {{title "hello world"}}', {}), "ABC xy Hello World");
  });

  it("trim markers, comments, escapes typed in a shell, raw strings", () => {
    assert.equal(t("a  {{- .x -}}  b", { x: 1 }), "a1b");
    assert.equal(t("a{{/* note */}}b", {}), "ab");
    assert.equal(t("{{.x}}\\n", { x: 1 }), "1\n");
    assert.equal(t('{{"\\t"}}{{`raw\\n`}}', {}), "\traw\\n");
  });

  it("errors name the problem", () => {
    assert.throws(() => t("{{if .x}}", {}), /without \{\{end\}\}/);
    assert.throws(() => t("{{end}}", {}), /without if/);
    assert.throws(() => t("{{nosuch .x}}", {}), /function "nosuch" not defined/);
    assert.throws(() => t("{{$y}}", {}), /undefined variable \$y/);
    assert.throws(() => t("{{else}}", {}), /outside/);
  });
});
