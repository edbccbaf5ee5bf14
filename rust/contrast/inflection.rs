//! English inflection for contrastive prompts: plurals, the a/an article, number words and
//! case transfer. ASCII rules only, so the Python reference (`textnorm._contrast_ref`) can
//! mirror them exactly.

/// Plurals that no suffix rule gives (or that the rules would get wrong).
const IRREGULAR: &[(&str, &str)] = &[
    ("mouse", "mice"),
    ("louse", "lice"),
    ("person", "people"),
    ("child", "children"),
    ("ox", "oxen"),
    ("goose", "geese"),
    ("tooth", "teeth"),
    ("foot", "feet"),
    ("man", "men"),
    ("woman", "women"),
    ("wolf", "wolves"),
    ("knife", "knives"),
    ("leaf", "leaves"),
    ("loaf", "loaves"),
    ("calf", "calves"),
    ("half", "halves"),
    ("shelf", "shelves"),
    ("thief", "thieves"),
    ("wife", "wives"),
    ("life", "lives"),
    ("elf", "elves"),
    ("scarf", "scarves"),
    ("hoof", "hooves"),
    ("cactus", "cacti"),
    ("fungus", "fungi"),
    ("nucleus", "nuclei"),
    ("potato", "potatoes"),
    ("tomato", "tomatoes"),
    ("hero", "heroes"),
    ("echo", "echoes"),
    ("volcano", "volcanoes"),
    ("mosquito", "mosquitoes"),
    ("torpedo", "torpedoes"),
    ("bus", "buses"),
    ("die", "dice"),
];

/// Nouns whose plural is the singular.
const INVARIANT: &[&str] = &[
    "fish",
    "sheep",
    "deer",
    "moose",
    "bison",
    "salmon",
    "trout",
    "shrimp",
    "aircraft",
    "spacecraft",
    "species",
    "series",
    "swine",
    "squid",
    "cod",
];

/// Words ending in "man" that are not compounds of "man".
const NOT_MAN_COMPOUNDS: &[&str] = &[
    "human", "german", "roman", "shaman", "talisman", "caiman", "ottoman", "walkman",
];

/// Number words for 1..=20; counts above 20 are written in digits.
pub const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// The value of a lowercase number word in 1..=20.
pub fn number_word_value(word: &str) -> Option<u32> {
    NUMBER_WORDS[1..]
        .iter()
        .position(|w| *w == word)
        .map(|i| i as u32 + 1)
}

/// Plural of a lowercase singular noun; a multiword noun inflects its last word.
pub fn plural(noun: &str) -> String {
    match noun.rfind(' ') {
        Some(i) => format!("{}{}", &noun[..=i], plural_word(&noun[i + 1..])),
        None => plural_word(noun),
    }
}

fn plural_word(w: &str) -> String {
    if let Some((_, p)) = IRREGULAR.iter().find(|(s, _)| *s == w) {
        return (*p).to_string();
    }
    if INVARIANT.contains(&w) {
        return w.to_string();
    }
    if w.len() > 5 && w.ends_with("woman") {
        return format!("{}women", &w[..w.len() - 5]);
    }
    if w.len() > 3 && w.ends_with("man") && !NOT_MAN_COMPOUNDS.contains(&w) {
        return format!("{}men", &w[..w.len() - 3]);
    }
    let b = w.as_bytes();
    let n = b.len();
    if w.ends_with('s')
        || w.ends_with('x')
        || w.ends_with('z')
        || w.ends_with("ch")
        || w.ends_with("sh")
    {
        return format!("{w}es");
    }
    if n >= 2 && b[n - 1] == b'y' && !is_vowel(b[n - 2]) {
        return format!("{}ies", &w[..n - 1]);
    }
    format!("{w}s")
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')
}

/// Beginnings spelled with a vowel but said with a consonant sound.
const A_PREFIXES: &[&str] = &[
    "uni", "use", "usu", "uti", "ura", "ure", "uro", "eu", "ewe", "one", "once", "ufo", "uk",
];
/// Beginnings spelled with a consonant but said with a vowel sound.
const AN_PREFIXES: &[&str] = &["hour", "honest", "honor", "honour", "heir"];

fn starts_with_ci(w: &str, prefix: &str) -> bool {
    w.len() >= prefix.len() && w.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// "a" or "an" before `next` (the word that follows the article).
pub fn article(next: &str) -> &'static str {
    // Only words starting with a vowel or "h" can differ from the first-letter rule.
    match next.as_bytes().first().map(u8::to_ascii_lowercase) {
        Some(b'a' | b'e' | b'i' | b'o' | b'u' | b'h') => {}
        _ => return "a",
    }
    if AN_PREFIXES.iter().any(|p| starts_with_ci(next, p)) {
        return "an";
    }
    if A_PREFIXES.iter().any(|p| starts_with_ci(next, p)) {
        return "a";
    }
    match next.as_bytes().first() {
        Some(c) if is_vowel(c.to_ascii_lowercase()) => "an",
        _ => "a",
    }
}

/// Gives `new` the case of `orig` at its first letter: an upper-case original capitalises
/// the replacement; a lower-case original lower-cases a capitalised (not all-caps) one; an
/// all-caps original of two or more letters upper-cases the whole replacement.
pub fn transfer_case(orig: &str, new: &str) -> String {
    let mut out = new.to_string();
    case_in_place(orig, &mut out);
    out
}

/// [`transfer_case`] in place on `s`.
pub fn case_in_place(orig: &str, s: &mut str) {
    let mut letters = 0usize;
    let mut all_upper = true;
    for c in orig.bytes().filter(u8::is_ascii_alphabetic) {
        letters += 1;
        if c.is_ascii_lowercase() {
            all_upper = false;
            break;
        }
    }
    if letters >= 2 && all_upper {
        s.make_ascii_uppercase();
        return;
    }
    if let (Some(&o), Some(&n)) = (orig.as_bytes().first(), s.as_bytes().first()) {
        if o.is_ascii_uppercase() && n.is_ascii_lowercase() {
            s[..1].make_ascii_uppercase();
        } else if o.is_ascii_lowercase() && n.is_ascii_uppercase() {
            let second_upper = s.as_bytes().get(1).is_some_and(|c| c.is_ascii_uppercase());
            if !second_upper {
                s[..1].make_ascii_lowercase();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        let cases = [
            ("mouse", "mice"),
            ("person", "people"),
            ("child", "children"),
            ("fish", "fish"),
            ("sheep", "sheep"),
            ("deer", "deer"),
            ("wolf", "wolves"),
            ("knife", "knives"),
            ("leaf", "leaves"),
            ("goose", "geese"),
            ("tooth", "teeth"),
            ("foot", "feet"),
            ("man", "men"),
            ("woman", "women"),
            ("cactus", "cacti"),
            ("bus", "buses"),
            ("box", "boxes"),
            ("baby", "babies"),
            ("toy", "toys"),
            ("peach", "peaches"),
            ("teddy bear", "teddy bears"),
            ("snowman", "snowmen"),
            ("human", "humans"),
            ("roof", "roofs"),
            ("palm tree", "palm trees"),
        ];
        for (s, p) in cases {
            assert_eq!(plural(s), p, "{s}");
        }
    }

    #[test]
    fn articles() {
        for (w, a) in [
            ("apple", "an"),
            ("cat", "a"),
            ("umbrella", "an"),
            ("unicorn", "a"),
            ("hour", "an"),
            ("orange", "an"),
            ("Elephant", "an"),
            ("", "a"),
        ] {
            assert_eq!(article(w), a, "{w}");
        }
    }

    #[test]
    fn case_transfer() {
        assert_eq!(transfer_case("A", "two"), "Two");
        assert_eq!(transfer_case("a", "Two"), "two");
        assert_eq!(transfer_case("a", "TV"), "TV");
        assert_eq!(transfer_case("CATS", "dogs"), "DOGS");
        assert_eq!(transfer_case("", "x"), "x");
        assert_eq!(transfer_case("é", "x"), "x");
    }

    #[test]
    fn number_words() {
        assert_eq!(number_word_value("one"), Some(1));
        assert_eq!(number_word_value("twenty"), Some(20));
        assert_eq!(number_word_value("zero"), None);
    }
}
