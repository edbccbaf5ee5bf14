use super::*;

fn run(text: &str, rules: &[&str]) -> Vec<String> {
    let lex = Lexicon::default_lexicon();
    let rules = Rule::parse_list(rules).unwrap();
    contrast_one(text, &rules, None, 0, &lex)
        .into_iter()
        .map(|c| c.0)
        .collect()
}

#[test]
fn counting_template() {
    assert_eq!(
        run("a realistic photo of three deer", &["count"]),
        [
            "a realistic photo of a deer",
            "a realistic photo of two deer",
            "a realistic photo of four deer",
            "a realistic photo of five deer"
        ]
    );
    assert_eq!(
        run("An apple.", &["count"]),
        ["Two apples.", "Three apples."]
    );
    assert_eq!(
        run("two mice", &["count"]),
        ["a mouse", "three mice", "four mice"]
    );
    assert_eq!(run("3 wolves", &["count"])[0], "1 wolf");
}

#[test]
fn count_changes_one_count_at_a_time() {
    assert_eq!(
        run("two mice on a table", &["count"]),
        [
            "a mouse on a table",
            "three mice on a table",
            "four mice on a table",
            "two mice on two tables",
            "two mice on three tables"
        ]
    );
    // twenty counted phrases: 20 windows of 2-4 values, each alone
    let long = "a cat and ".repeat(19) + "a dog";
    let got = run(&long, &["count"]);
    assert_eq!(got.len(), 16 * 2);
}

#[test]
fn composition_template() {
    let got = run(
        "a realistic photo of an airplane and a teddy bear",
        &["drop", "joint_count", "hybrid"],
    );
    let want = [
        "a realistic photo of an airplane",
        "a realistic photo of a teddy bear",
        "a realistic photo of two airplanes and a teddy bear",
        "a realistic photo of an airplane and two teddy bears",
        "a realistic photo of two airplanes and two teddy bears",
        "a realistic photo of three airplanes and a teddy bear",
        "a realistic photo of an airplane and three teddy bears",
        "a realistic photo of three airplanes and two teddy bears",
        "a realistic photo of two airplanes and three teddy bears",
        "a realistic photo of three airplanes and three teddy bears",
        "a realistic photo of an airplane-like teddy bear",
        "a realistic photo of a teddy bear-like airplane",
    ];
    assert_eq!(got, want);
    // `count` keeps the single-change ones, in the order of the text
    let single = run(
        "a realistic photo of an airplane and a teddy bear",
        &["count"],
    );
    assert_eq!(single, [want[2], want[5], want[3], want[6]]);
}

#[test]
fn world_prompts() {
    assert!(run("three red circles", &["count"]).contains(&"a red circle".to_string()));
    assert_eq!(
        run("a red cube and a blue ball", &["binding"]),
        ["a blue cube and a red ball"]
    );
    let b = run("a big red star above a small blue hexagon", &["binding"]);
    assert_eq!(
        b,
        [
            "a big blue star above a small red hexagon",
            "a small red star above a big blue hexagon",
            "a small blue star above a big red hexagon"
        ]
    );
    assert_eq!(
        run(
            "a green triangle to the left of a purple circle",
            &["relation", "swap"]
        ),
        [
            "a green triangle to the right of a purple circle",
            "a purple circle to the left of a green triangle"
        ]
    );
    assert_eq!(run("A cat on a dog", &["swap"]), ["A dog on a cat"]);
    let colors = run("a blue square and a yellow star", &["color"]);
    assert!(colors.contains(&"a red square and a yellow star".to_string()));
    assert!(colors.iter().all(|c| !c.contains("grey")));
    assert_eq!(run("a big red star", &["attribute"]), ["a small red star"]);
    let objects = run("a green triangle", &["object"]);
    assert!(objects.contains(&"a green hexagon".to_string()));
    assert!(objects.contains(&"a green circle".to_string()));
    assert_eq!(run("an orange cat", &["color"])[0], "a red cat");
}

#[test]
fn nothing_to_do_and_robustness() {
    let all: Vec<&str> = RULES.iter().map(|d| d.name).collect();
    for text in [
        "",
        "   ",
        "\u{00e9}\u{4e2d}\u{6587} \u{1F600}",
        "of of of",
        "a a a a",
    ] {
        assert!(run(text, &all).is_empty(), "{text:?}");
    }
    let long = "a cat and a dog ".repeat(700);
    let got = run(&long, &["count", "relation", "drop"]);
    assert!(!got.is_empty());
}

#[test]
fn k_samples_and_threads_do_not_matter() {
    let lex = Lexicon::default_lexicon();
    let prompts: Vec<String> = (0..3000)
        .map(|i| format!("{} red cats and a dog {}", i % 7 + 1, i))
        .collect();
    let all = Rule::all();
    let a = contrast(&prompts, &all, Some(5), 3, &lex, DEFAULT_MAX_BYTES).unwrap();
    for (p, s) in prompts.iter().zip(&a) {
        assert_eq!(s, &contrast_one(p, &all, Some(5), 3, &lex));
        assert_eq!(s.len(), 5);
    }
    assert!(Rule::parse_list(&["nope"]).is_err());
    assert!(Rule::parse_list::<&str>(&[]).is_err());
}

#[test]
#[ignore]
fn timing_breakdown() {
    let lex = Lexicon::default_lexicon();
    let prompts: Vec<String> = (0..20000)
        .map(|i| match i % 3 {
            0 => format!(
                "a realistic photo of {} cats",
                ["two", "three", "four"][i % 3]
            ),
            1 => "a small black cross on top of a small purple square".to_string(),
            _ => "a realistic photo of an apple and a cup".to_string(),
        })
        .collect();
    let t = std::time::Instant::now();
    let mut n = 0;
    for p in &prompts {
        n += parse::parse(p, &lex).nps.len();
    }
    eprintln!("parse {:?}/prompt {n}", t.elapsed() / prompts.len() as u32);
    let t = std::time::Instant::now();
    let mut n = 0;
    for p in &prompts {
        let parsed = parse::parse(p, &lex);
        let inp = rules::Input {
            text: p,
            p: &parsed,
            lex: &lex,
        };
        let mut buf = render::Cands::default();
        counts::count(&inp, &mut buf);
        rules::object(&inp, &mut buf);
        rules::color(&inp, &mut buf);
        n += buf.len();
    }
    eprintln!("rules {:?}/prompt {n}", t.elapsed() / prompts.len() as u32);
    let t = std::time::Instant::now();
    let mut n = 0;
    for p in &prompts {
        n += contrast_one(p, &Rule::all(), Some(8), 0, &lex).len();
    }
    eprintln!("all {:?}/prompt {n}", t.elapsed() / prompts.len() as u32);
}

#[test]
fn output_is_capped_by_max_bytes() {
    let lex = Lexicon::default_lexicon();
    let rules = Rule::defaults();
    let prompts = ["two red cats above a dog", "a cat", "three mice"];
    let full = contrast(&prompts, &rules, None, 0, &lex, DEFAULT_MAX_BYTES).unwrap();
    let need: usize = prompts
        .iter()
        .map(|p| {
            contrast_within(p, &rules, None, 0, &lex, usize::MAX)
                .unwrap()
                .1
        })
        .sum();
    // exactly enough passes (with or without sampling), one byte less fails
    assert_eq!(
        contrast(&prompts, &rules, None, 0, &lex, need).unwrap(),
        full
    );
    assert!(contrast(&prompts, &rules, Some(2), 0, &lex, need).is_ok());
    for k in [None, Some(2)] {
        let err = contrast(&prompts, &rules, k, 0, &lex, need - 1).unwrap_err();
        assert!(err.to_string().starts_with("prompts: expected"), "{err}");
        assert!(err.to_string().contains("max_bytes"), "{err}");
    }
    // a 1,000,000-character prompt stops at the cap instead of writing 1.6 GB (64 MiB here,
    // to keep the test light; the default is 1 GiB)
    let huge = "a red cat above two dogs ".repeat(40_000);
    assert!(contrast(&[huge], &rules, Some(8), 0, &lex, 1 << 26).is_err());
}

#[test]
fn many_nouns_in_one_category_stay_linear() {
    // 100,000 nouns of one category: one `object` candidate each (this took 17 s with
    // hash-table indices that collided; now it is linear).
    let nouns: Vec<String> = (0..100_000).map(|i| format!("\"critter{i}\"")).collect();
    let json = format!(r#"{{"nouns": {{"animal": [{}]}}}}"#, nouns.join(","));
    let lex = Lexicon::from_json_layers(&[lexicon::DEFAULT_JSON, &json]).unwrap();
    let rules = Rule::parse_list(&["object"]).unwrap();
    let got = contrast(&["a cat"], &rules, Some(3), 0, &lex, DEFAULT_MAX_BYTES).unwrap();
    assert_eq!(got[0].len(), 3);
    let all = contrast_one("a critter7", &rules, None, 0, &lex);
    assert_eq!(
        all.len(),
        lex.by_category[lex.nouns[lex.forms["cat"].0].category].len() - 1
    );
}

// Grammar (parse.rs).
mod grammar {
    use crate::contrast::lexicon::Lexicon;
    use crate::contrast::parse::*;

    fn lex() -> Lexicon {
        Lexicon::default_lexicon()
    }

    #[test]
    fn words() {
        let t = tokenize("a teddy bear-like frog, isn't it? café 3");
        let w: Vec<&str> = t.iter().map(|t| t.lower.as_str()).collect();
        assert_eq!(
            w,
            [
                "a",
                "teddy",
                "bear-like",
                "frog",
                "isn't",
                "it",
                "café",
                "3"
            ]
        );
    }

    #[test]
    fn noun_phrases_and_relations() {
        let lex = lex();
        let text = "A big red star above a small blue hexagon";
        let p = parse(text, &lex);
        assert_eq!(p.nps.len(), 2);
        assert_eq!(&text[p.nps[0].start..p.nps[0].end], "A big red star");
        assert_eq!(p.nps[0].mods.len(), 2);
        assert_eq!(p.relations.len(), 1);
        assert_eq!(p.relations[0].opposite, "below");
        let text = "a realistic photo of an orange cat and two teddy bears";
        let p = parse(text, &lex);
        let spans: Vec<&str> = p.nps.iter().map(|n| &text[n.start..n.end]).collect();
        assert_eq!(spans, ["an orange cat", "two teddy bears"]);
        assert_eq!(
            p.nps[1].det.as_ref().unwrap().count,
            Some(Count {
                n: 2,
                style: Style::Word
            })
        );
        let p = parse("a dog chasing cats", &lex);
        assert_eq!(p.nps.len(), 2);
        let p = parse("a green triangle to the left of a purple circle", &lex);
        assert_eq!(p.relations[0].opposite, "to the right of");
    }
}
