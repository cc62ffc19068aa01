//! Unit tests of the splitter: hand-picked cases, each checked against the CLI's parser.
use super::split_and_trim;
use pretty_assertions::assert_eq;
use rstest::rstest;

#[rstest]
// Separators, trimming and empty statements.
#[case::two_statements("SELECT 1; SELECT 2;", &["SELECT 1", "SELECT 2"])]
#[case::no_trailing_semicolon("create table a (id int);\ncreate table b (id int)", &["create table a (id int)", "create table b (id int)"])]
#[case::trims_around_keeps_inside("  \n\tSELECT\n  1 ;\n\n", &["SELECT\n  1"])]
#[case::drops_empty_statements(";;\n ;SELECT 1;;", &["SELECT 1"])]
#[case::empty_file("", &[])]
#[case::whitespace_only(" \n\t \r\n", &[])]
#[case::unicode_whitespace_is_trimmed("\u{a0}SELECT 1;\u{3000}", &["SELECT 1"])]
#[case::byte_order_mark_is_kept("\u{feff}SELECT 1;", &["\u{feff}SELECT 1"])]
// Comments.
#[case::leading_comments_stay("-- first\nSELECT 1;\n/* second */ SELECT 2;", &["-- first\nSELECT 1", "/* second */ SELECT 2"])]
#[case::comment_after_last_semicolon("SELECT 1;\n-- trailing note\n", &["SELECT 1", "-- trailing note"])]
#[case::line_comment_hides_semicolon("SELECT 1 -- not here; \n; SELECT 2", &["SELECT 1 -- not here;", "SELECT 2"])]
#[case::single_dash_is_minus("SELECT 2 - 1; SELECT 3", &["SELECT 2 - 1", "SELECT 3"])]
#[case::nested_block_comment("SELECT /* a; /* b; */ c; */ 1; SELECT 2", &["SELECT /* a; /* b; */ c; */ 1", "SELECT 2"])]
#[case::slash_is_division("SELECT 4 / 2; SELECT 3", &["SELECT 4 / 2", "SELECT 3"])]
#[case::slash_star_slash_closes_at_once("SELECT /*/ ; */ 1; SELECT 2", &["SELECT /*/", "*/ 1", "SELECT 2"])]
// Quotes.
#[case::single_quotes("SELECT ';'; SELECT 2", &["SELECT ';'", "SELECT 2"])]
#[case::doubled_single_quote("SELECT 'it''s; fine'; SELECT 2", &["SELECT 'it''s; fine'", "SELECT 2"])]
#[case::backslash_in_e_string_is_not_an_escape("SELECT E'it\\'s; x'; SELECT 2;", &["SELECT E'it\\'s", "x'; SELECT 2"])]
#[case::double_quoted_identifier("CREATE POLICY \"a;b\" ON t; SELECT 2", &["CREATE POLICY \"a;b\" ON t", "SELECT 2"])]
#[case::doubled_double_quote("SELECT \"x\"\";y\" FROM t; SELECT 2", &["SELECT \"x\"\";y\" FROM t", "SELECT 2"])]
#[case::non_ascii_text("INSERT INTO t VALUES ('café; crème'); SELECT 'ü'", &["INSERT INTO t VALUES ('café; crème')", "SELECT 'ü'"])]
// Dollar quotes.
#[case::anonymous_dollar_quote("DO $$ BEGIN PERFORM 1; END $$; SELECT 2;", &["DO $$ BEGIN PERFORM 1; END $$", "SELECT 2"])]
#[case::tagged_dollar_quote("CREATE FUNCTION f() RETURNS text AS $fn$ SELECT '$$;'; $fn$ LANGUAGE sql; SELECT 2", &["CREATE FUNCTION f() RETURNS text AS $fn$ SELECT '$$;'; $fn$ LANGUAGE sql", "SELECT 2"])]
#[case::non_ascii_character_ends_a_tag("DO $é$ SELECT 1; $é$; SELECT 2", &["DO $é$ SELECT 1", "$é$", "SELECT 2"])]
#[case::dollar_after_non_ascii_opens_a_tag("SELECT é$$; SELECT 2; $$; SELECT 3", &["SELECT é$$; SELECT 2; $$", "SELECT 3"])]
#[case::dollar_after_identifier_opens_a_tag("SELECT 1 AS x$$; SELECT 2", &["SELECT 1 AS x$$; SELECT 2"])]
#[case::dollar_inside_identifier("SELECT a$b; SELECT 2", &["SELECT a$b", "SELECT 2"])]
#[case::positional_parameter("PREPARE p AS SELECT $1; SELECT 2", &["PREPARE p AS SELECT $1", "SELECT 2"])]
#[case::triple_dollar_opens_and_closes("SELECT $$$; SELECT 2", &["SELECT $$$", "SELECT 2"])]
#[case::unterminated_dollar_quote("DO $$ BEGIN; ", &["DO $$ BEGIN;"])]
// Parentheses and backslashes.
#[case::parentheses("CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b); SELECT 1", &["CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b)", "SELECT 1"])]
#[case::first_close_paren_closes_all("DO ALSO (SELECT f(1); NOTIFY b); SELECT 1", &["DO ALSO (SELECT f(1)", "NOTIFY b)", "SELECT 1"])]
#[case::quoted_paren_inside_parens("DO ALSO (SELECT ')'; NOTIFY b); SELECT 1", &["DO ALSO (SELECT ')'; NOTIFY b)", "SELECT 1"])]
#[case::semicolon_after_quote_in_parens_keeps_the_quote_open("SELECT ('a';'b); SELECT 2'); SELECT 3", &["SELECT ('a';'b); SELECT 2')", "SELECT 3"])]
#[case::semicolon_after_dash_in_parens_keeps_the_dash("SELECT (1 -;- x); \n); SELECT 2", &["SELECT (1 -;- x); \n)", "SELECT 2"])]
#[case::semicolon_after_tag_in_parens_joins_the_tag("SELECT ($x;y$ ); $x;y$); SELECT 2", &["SELECT ($x;y$ ); $x;y$)", "SELECT 2"])]
#[case::backslash_escapes_next("SELECT 1 \\; SELECT 2; SELECT 3", &["SELECT 1 \\; SELECT 2", "SELECT 3"])]
// BEGIN ATOMIC bodies.
#[case::begin_atomic(
    "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT a + b;\nEND;\nSELECT 1;",
    &["CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT a + b;\nEND", "SELECT 1"]
)]
#[case::atomic_body_ends_at_case_end("begin atomic select 1; select case when true then 1 end; end; select 2", &["begin atomic select 1; select case when true then 1 end", "end", "select 2"])]
#[case::atomic_body_ends_at_end_starting_a_word("BEGIN ATOMIC SELECT 1; endpoint; END; SELECT 2", &["BEGIN ATOMIC SELECT 1; endpoint", "END", "SELECT 2"])]
#[case::atomic_body_ends_at_end_inside_a_word("BEGIN ATOMIC SELECT legend FROM t; END; SELECT 2", &["BEGIN ATOMIC SELECT legend FROM t", "END", "SELECT 2"])]
#[case::atomic_end_in_quotes_and_comments("BEGIN ATOMIC SELECT 'end'; /* end */ SELECT \"End\"; -- end\nEND; SELECT 2", &["BEGIN ATOMIC SELECT 'end'; /* end */ SELECT \"End\"; -- end\nEND", "SELECT 2"])]
#[case::atomic_end_in_a_dollar_tag("BEGIN ATOMIC SELECT $end$x$end$; END; SELECT 2", &["BEGIN ATOMIC SELECT $end$x$end$; END", "SELECT 2"])]
#[case::atomic_after_a_non_ascii_symbol("→begin atomic select 1; end; select 2", &["→begin atomic select 1; end", "select 2"])]
#[case::atomic_after_a_non_ascii_letter("ébegin atomic select 1; end; select 2", &["ébegin atomic select 1", "end", "select 2"])]
#[case::atomic_after_unicode_whitespace("begin\u{3000}atomic select 1; end; select 2", &["begin\u{3000}atomic select 1; end", "select 2"])]
#[case::atomic_needs_whitespace_only("begin -- x\natomic select 1; end; select 2", &["begin -- x\natomic select 1", "end", "select 2"])]
#[case::atomic_word_may_go_on("begin atomically select 1; end; select 2", &["begin atomically select 1; end", "select 2"])]
#[case::end_does_not_close_a_parenthesis("(begin atomic select 1; end; select 2); select 3", &["(begin atomic select 1; end; select 2)", "select 3"])]
#[case::atomic_end_after_comment("BEGIN ATOMIC SELECT 1; -- done\nEND; SELECT 2", &["BEGIN ATOMIC SELECT 1; -- done\nEND", "SELECT 2"])]
#[case::atomic_in_identifier("create table public.atomic_log (id int); select 1;", &["create table public.atomic_log (id int)", "select 1"])]
#[case::begin_without_atomic("BEGIN; SELECT 1; END;", &["BEGIN", "SELECT 1", "END"])]
// Windows line endings stay inside statements.
#[case::crlf_file(
    "-- comment\r\nCREATE TABLE a (\r\n  id int\r\n);\r\nINSERT INTO a VALUES (1);\r\n",
    &["-- comment\r\nCREATE TABLE a (\r\n  id int\r\n)", "INSERT INTO a VALUES (1)"]
)]
fn splits_like_the_supabase_cli(#[case] sql: &str, #[case] expected: &[&str]) {
    assert_eq!(split_and_trim(sql), expected);
}

#[test]
fn raw_pieces_keep_their_separator() {
    assert_eq!(
        super::split_raw("SELECT 1; SELECT 2"),
        ["SELECT 1;", " SELECT 2"]
    );
}
