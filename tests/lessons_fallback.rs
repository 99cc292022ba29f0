//! Lesson 2 without SmolLM2 in the cache runs the zoo model and says its heads
//! are soft. Its own test binary: it sets ATTNVIZ_CACHE for the whole process.

#[test]
fn without_smollm2_the_heads_lesson_runs_the_zoo_and_says_so() {
    let empty = tempfile::tempdir().unwrap();
    // SAFETY: the only test in this binary; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("ATTNVIZ_CACHE", empty.path()) };
    let lesson = attnviz::lesson::find("2").unwrap();
    let step = lesson.steps.iter().position(|s| s.title == "Induction heads").unwrap();
    let text =
        attnviz::lesson::fill(&lesson.steps[step].markdown, &attnviz::lesson::step_values(&lesson, step).unwrap())
            .unwrap();
    assert!(text.contains("`tiny-gqa`") && text.contains("have not formed an induction head yet"), "{text}");
}
