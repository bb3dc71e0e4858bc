"""prompts: front matter, strict rendering, load-time checks, hashes, the shipped templates."""

import hashlib
from pathlib import Path

import pytest

from duragent import prompts
from duragent.durable import UsageError
from duragent.prompts import PromptError, PromptTemplate, RenderedPrompt, load, render

SUMMARIZE = """---
name: summarize
description: A short summary.
variables: [topic, audience]
---
Summarize {topic} for {audience}.
Literal braces: {{"json": true}} and {{topic}}.
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "summarize.md").write_text(SUMMARIZE)
    return tmp_path


def test_load_parses_front_matter_and_renders(folder: Path) -> None:
    template = load("summarize", directory=folder)
    assert template.name == "summarize"
    assert template.variables == ("topic", "audience")
    assert template.description == "A short summary."
    assert template.path == folder / "summarize.md"
    rendered = template.render(topic="durable agents", audience="new engineers")
    assert isinstance(rendered, RenderedPrompt)
    assert rendered.text == ('Summarize durable agents for new engineers.\n'
                             'Literal braces: {"json": true} and {topic}.')
    assert str(rendered) == rendered.text and rendered.name == "summarize"
    assert dict(rendered.variables) == {"topic": "durable agents", "audience": "new engineers"}


def test_hashes(folder: Path) -> None:
    rendered = load("summarize", directory=folder).render(topic="a", audience="b")
    assert rendered.hash == hashlib.sha256(rendered.text.encode()).hexdigest()[:16]
    assert rendered.template_hash == hashlib.sha256(SUMMARIZE.encode()).hexdigest()[:16]
    again = load(folder / "summarize.md").render(topic="a", audience="b")
    assert (again.hash, again.template_hash) == (rendered.hash, rendered.template_hash)
    other = load("summarize", directory=folder).render(topic="a", audience="c")
    assert other.hash != rendered.hash and other.template_hash == rendered.template_hash
    # an edit to the template (even one that renders the same text) changes template_hash
    (folder / "summarize.md").write_text(SUMMARIZE.replace("description: A short summary.", "version: 2"))
    edited = load("summarize", directory=folder).render(topic="a", audience="b")
    assert edited.hash == rendered.hash and edited.template_hash != rendered.template_hash
    # line endings do not count
    (folder / "summarize.md").write_text(SUMMARIZE.replace("\n", "\r\n"), newline="")
    assert load("summarize", directory=folder).template_hash == rendered.template_hash


def test_missing_variable_names_it_and_the_declared_list(folder: Path) -> None:
    with pytest.raises(PromptError) as info:
        load("summarize", directory=folder).render(topic="x")
    assert str(info.value) == ("prompt 'summarize': missing variable(s) ['audience']; declared variables: "
                               "['topic', 'audience']")
    assert isinstance(info.value, UsageError)


def test_unknown_variable_is_refused(folder: Path) -> None:
    with pytest.raises(PromptError) as info:
        load("summarize", directory=folder).render(topic="x", audience="y", tone="dry")
    assert str(info.value) == ("prompt 'summarize': unknown variable(s) ['tone']; declared variables: "
                               "['topic', 'audience']")
    with pytest.raises(PromptError, match=r"missing variable\(s\) \['audience'\] and unknown variable\(s\) \['x'\]"):
        load("summarize", directory=folder).render(topic="t", x=1)
    with pytest.raises(PromptError, match=r"variable\(s\) \['audience'\] are None"):
        load("summarize", directory=folder).render(topic="t", audience=None)


def test_values_are_inserted_verbatim_never_interpreted(folder: Path) -> None:
    rendered = load("summarize", directory=folder).render(topic="{audience} {0} {__class__}", audience=42)
    assert rendered.text.startswith("Summarize {audience} {0} {__class__} for 42.")


def test_undeclared_placeholder_fails_at_load_time() -> None:
    source = "---\nname: t\nvariables: [topic]\n---\nAbout {topic}.\n\nFor {audience}, in {tone}.\n"
    with pytest.raises(PromptError) as info:
        PromptTemplate.from_string(source)
    message = str(info.value)
    assert "placeholder {audience} (line 7), {tone} (line 7) not declared" in message
    assert "declared variables: ['topic']" in message


def test_declared_but_unused_variable_fails_at_load_time() -> None:
    with pytest.raises(PromptError, match=r"declared variable\(s\) \['audience'\] never used"):
        PromptTemplate.from_string("---\nvariables: [topic, audience]\n---\nAbout {topic}.")


@pytest.mark.parametrize(("body", "problem"), [
    ('Answer as {"score": 1}', "lone '{'"),
    ("a } b", "lone '}'"),
    ("{topic!r}", "lone '{'"),
    ("{topic.__class__}", "lone '{'"),
    ("{0}", "lone '{'"),
    ("{ topic }", "lone '{'"),
])
def test_anything_but_plain_placeholders_and_doubled_braces_is_refused(body: str, problem: str) -> None:
    with pytest.raises(PromptError, match=problem):
        PromptTemplate.from_string(f"---\nvariables: [topic]\n---\n{{topic}}\n{body}")


def test_front_matter_forms() -> None:
    template = PromptTemplate.from_string(
        "---\n# a comment\nname: 'quoted'\nversion: 3\nvariables:\n  - a\n  - b\ntags: []\n---\n\n\n{a}{b}\n\n")
    assert template.name == "quoted" and template.variables == ("a", "b")
    assert template.metadata["version"] == 3 and template.metadata["tags"] == []
    assert template.body == "{a}{b}"
    assert template.render(a=1, b=2).text == "12"
    no_header = PromptTemplate.from_string("Just text, {{braces}}.", name="plain")
    assert (no_header.name, no_header.variables) == ("plain", ())
    assert no_header.render().text == "Just text, {braces}."


@pytest.mark.parametrize(("source", "problem"), [
    ("---\nvariables: [a]\nA {a}", "never closed"),
    ("---\nvariables: [a, a]\n---\n{a}", "declared twice"),
    ("---\nvariables: [a-b]\n---\nx", "not an identifier"),
    ("---\nvariables: [a\n---\n{a}", "must close with ']'"),
    ("---\njust words\n---\nx", "line 2 is not 'key: value'"),
    ("---\nname: a\nname: b\n---\nx", "appears twice"),
])
def test_bad_front_matter(source: str, problem: str) -> None:
    with pytest.raises(PromptError, match=problem):
        PromptTemplate.from_string(source)


def test_unknown_name_lists_what_is_available(folder: Path) -> None:
    with pytest.raises(PromptError, match=r"no prompt template 'sumarize'.*available in .*: \['summarize'\]"):
        load("sumarize", directory=folder)
    with pytest.raises(PromptError, match="invalid prompt name"):
        load("two words", directory=folder)


def test_shipped_templates_load_and_render() -> None:
    assert {"research_summarizer", "evaluator_rubric", "router"} <= set(prompts.available())
    summary = render("research_summarizer", topic="durable execution", audience="engineers", max_words=300)
    assert "research **durable execution**" in summary.text and "at most 300 words" in summary.text
    verdict = render("evaluator_rubric", task="Write a haiku", criteria="- 5/7/5 syllables",
                     response="An old silent pond")
    assert '{"verdict": "pass" | "revise", "scores": {"<criterion>": <1-5>}' in verdict.text
    assert "<response>\nAn old silent pond\n</response>" in verdict.text
    route = render("router", routes="- billing\n- other", request="I was charged twice")
    assert route.text.endswith('{"route": "<route name>", "reason": "<one short sentence>"}')
    for name in ("research_summarizer", "evaluator_rubric", "router"):
        template = load(name)
        assert template.name == name and template.description
        assert len(template.template_hash) == 16


def test_render_takes_variables_named_like_its_own_parameters(tmp_path: Path) -> None:
    (tmp_path / "t.md").write_text("---\nvariables: [name, directory]\n---\n{name} in {directory}")
    assert render(tmp_path / "t.md", name="a", directory="b").text == "a in b"
