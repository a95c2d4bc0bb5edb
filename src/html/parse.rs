//! HTML parsing with the tree depth bounded, the way browsers bound it.
//!
//! html5ever walks the stack of open elements for almost every tag (scope checks), so a
//! page of 100,000 nested `<div>`s costs 100,000² steps: tens of seconds for 1 MB. Like
//! Chromium (512 levels), an element that would open below [`MAX_DEPTH`] is closed at
//! once: it becomes a child of the element at the limit, its content follows it as
//! siblings, and the stack never holds more than about [`MAX_DEPTH`] elements. Images
//! deep down are kept; only the nesting is flattened.
//!
//! The depth is watched in the tree sink (where each element is attached, its parent's
//! depth is known) and enforced in the token stream (an end tag for the element just
//! opened too deep is fed straight after its start tag), since neither side alone can
//! both see the depth and change what the tree builder's stack holds.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use html5ever::interface::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, EndTag, Tag, TagToken, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::tree_builder::{TreeBuilder, TreeBuilderOpts};
use html5ever::{Attribute, QualName, local_name, ns};
use scraper::{Html, HtmlTreeSink};

/// Deepest element the tree holds (Chromium's `kMaximumHTMLParserDOMTreeDepth`).
pub const MAX_DEPTH: u32 = 512;

/// A parsed document and what bounding its depth cost.
pub struct Parsed {
    pub html: Html,
    /// Elements that opened below [`MAX_DEPTH`] and were closed at once.
    pub flattened: u64,
}

/// `text` as a whole document, scripting on (so `<noscript>` holds text, as in a browser
/// that runs scripts).
pub fn document(text: &str) -> Parsed {
    let sink = DepthSink::new(Html::new_document());
    let builder = TreeBuilder::new(sink, TreeBuilderOpts::default());
    run(builder, TokenizerOpts::default(), text)
}

/// `text` as the content of a `<body>`: how a browser with scripting off reads the text
/// of a `<noscript>`.
pub fn fragment(text: &str) -> Parsed {
    let sink = DepthSink::new(Html::new_fragment());
    let context = QualName::new(None, ns!(html), local_name!("body"));
    let context = sink.create_element(context, Vec::new(), ElementFlags::default());
    let opts = TreeBuilderOpts { scripting_enabled: false, ..TreeBuilderOpts::default() };
    let builder = TreeBuilder::new_for_fragment(sink, context, None, opts);
    let opts = TokenizerOpts {
        initial_state: Some(builder.tokenizer_state_for_context_elem(false)),
        ..TokenizerOpts::default()
    };
    run(builder, opts, text)
}

fn run(builder: TreeBuilder<Handle, DepthSink>, opts: TokenizerOpts, text: &str) -> Parsed {
    let tokenizer = Tokenizer::new(DepthCap { builder }, opts);
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(text));
    // A `Script` answer only pauses the tokenizer so a browser can run it: go on.
    while !matches!(tokenizer.feed(&input), html5ever::TokenizerResult::Done) {}
    tokenizer.end();
    let sink = tokenizer.sink.builder.sink;
    let flattened = sink.flattened.get();
    Parsed { html: sink.inner.finish(), flattened }
}

type Handle = ego_tree::NodeId;

/// Node ids are small distinct integers: hashing them with SipHash would only cost time.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

/// A set of node ids of one tree.
pub(crate) type IdSet = std::collections::HashSet<Handle, BuildHasherDefault<IdHasher>>;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Elements never left open need no closing: void ones (never on the stack) and raw text
/// ones, which hold no elements and so cannot deepen the tree (closing one early would
/// leave the tokenizer in its raw text state with the tree builder out of it).
fn never_deepens(name: &QualName) -> bool {
    name.ns == ns!(html)
        && matches!(
            name.local,
            local_name!("area")
                | local_name!("base")
                | local_name!("br")
                | local_name!("col")
                | local_name!("embed")
                | local_name!("hr")
                | local_name!("img")
                | local_name!("input")
                | local_name!("link")
                | local_name!("meta")
                | local_name!("source")
                | local_name!("track")
                | local_name!("wbr")
                | local_name!("param")
                | local_name!("keygen")
                | local_name!("basefont")
                | local_name!("bgsound")
                | local_name!("frame")
                | local_name!("script")
                | local_name!("style")
                | local_name!("textarea")
                | local_name!("title")
                | local_name!("xmp")
                | local_name!("iframe")
                | local_name!("noembed")
                | local_name!("noframes")
                | local_name!("noscript")
                | local_name!("plaintext")
        )
}

/// scraper's tree sink, noting each element's depth and which elements were attached
/// below the limit.
struct DepthSink {
    inner: HtmlTreeSink,
    depth: RefCell<HashMap<Handle, u32, BuildHasherDefault<IdHasher>>>,
    /// Elements attached below the limit since the token stream last looked.
    too_deep: RefCell<Vec<QualName>>,
    flattened: Cell<u64>,
}

impl DepthSink {
    fn new(html: Html) -> Self {
        Self {
            inner: HtmlTreeSink::new(html),
            depth: RefCell::default(),
            too_deep: RefCell::default(),
            flattened: Cell::new(0),
        }
    }

    fn depth_of(&self, node: &Handle) -> u32 {
        self.depth.borrow().get(node).copied().unwrap_or(0)
    }

    /// `child` now sits below an element of depth `parent_depth`.
    fn attached(&self, child: &NodeOrText<Handle>, parent_depth: u32) {
        let NodeOrText::AppendNode(node) = child else { return };
        let mut depths = self.depth.borrow_mut();
        // Comments and doctypes are never opened: only elements carry a depth.
        let Some(depth) = depths.get_mut(node) else { return };
        *depth = parent_depth + 1;
        if *depth > MAX_DEPTH {
            let name = self.inner.elem_name(node).clone();
            if !never_deepens(&name) {
                self.too_deep.borrow_mut().push(name);
            }
        }
    }
}

impl TreeSink for DepthSink {
    type Handle = Handle;
    type Output = Self;
    type ElemName<'a> = <HtmlTreeSink as TreeSink>::ElemName<'a>;

    fn finish(self) -> Self {
        self
    }

    fn parse_error(&self, msg: Cow<'static, str>) {
        self.inner.parse_error(msg);
    }

    fn get_document(&self) -> Handle {
        self.inner.get_document()
    }

    fn elem_name<'a>(&'a self, target: &'a Handle) -> Self::ElemName<'a> {
        self.inner.elem_name(target)
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> Handle {
        let node = self.inner.create_element(name, attrs, flags);
        self.depth.borrow_mut().insert(node, 0);
        node
    }

    fn create_comment(&self, text: StrTendril) -> Handle {
        self.inner.create_comment(text)
    }

    fn create_pi(&self, target: StrTendril, data: StrTendril) -> Handle {
        self.inner.create_pi(target, data)
    }

    fn append(&self, parent: &Handle, child: NodeOrText<Handle>) {
        self.attached(&child, self.depth_of(parent));
        self.inner.append(parent, child);
    }

    fn append_based_on_parent_node(
        &self,
        element: &Handle,
        prev_element: &Handle,
        child: NodeOrText<Handle>,
    ) {
        // Foster parenting: beside `element` if it is in the tree, else in `prev_element`.
        let depth = self.depth_of(element).min(self.depth_of(prev_element) + 1);
        self.attached(&child, depth.saturating_sub(1));
        self.inner.append_based_on_parent_node(element, prev_element, child);
    }

    fn append_before_sibling(&self, sibling: &Handle, new_node: NodeOrText<Handle>) {
        self.attached(&new_node, self.depth_of(sibling).saturating_sub(1));
        self.inner.append_before_sibling(sibling, new_node);
    }

    fn append_doctype_to_document(&self, name: StrTendril, public_id: StrTendril, system_id: StrTendril) {
        self.inner.append_doctype_to_document(name, public_id, system_id);
    }

    fn get_template_contents(&self, target: &Handle) -> Handle {
        let contents = self.inner.get_template_contents(target);
        let depth = self.depth_of(target);
        self.depth.borrow_mut().insert(contents, depth);
        contents
    }

    fn same_node(&self, x: &Handle, y: &Handle) -> bool {
        self.inner.same_node(x, y)
    }

    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode);
    }

    fn add_attrs_if_missing(&self, target: &Handle, attrs: Vec<Attribute>) {
        self.inner.add_attrs_if_missing(target, attrs);
    }

    fn remove_from_parent(&self, target: &Handle) {
        self.inner.remove_from_parent(target);
    }

    fn reparent_children(&self, node: &Handle, new_parent: &Handle) {
        // The adoption agency moves a few levels at most; the children's recorded depths
        // may be off by that much, which the limit tolerates.
        self.inner.reparent_children(node, new_parent);
    }
}

/// The token stream into the tree builder: after each token, closes at once whatever it
/// made the builder open below the limit.
struct DepthCap {
    builder: TreeBuilder<Handle, DepthSink>,
}

impl TokenSink for DepthCap {
    type Handle = Handle;

    fn process_token(&self, token: Token, line_number: u64) -> TokenSinkResult<Handle> {
        let answer = self.builder.process_token(token, line_number);
        let too_deep = std::mem::take(&mut *self.builder.sink.too_deep.borrow_mut());
        for name in too_deep.into_iter().rev() {
            self.builder.sink.flattened.set(self.builder.sink.flattened.get() + 1);
            let end = Tag {
                kind: EndTag,
                name: name.local,
                self_closing: false,
                attrs: Vec::new(),
                had_duplicate_attributes: false,
            };
            // An end tag answers `Continue`; the start tag's answer is the one that counts.
            let _ = self.builder.process_token(TagToken(end), line_number);
        }
        answer
    }

    fn end(&self) {
        self.builder.end();
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.builder.adjusted_current_node_present_but_not_in_html_namespace()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deepest element of the tree, by walking it (what the limit is about).
    fn max_depth(html: &Html) -> usize {
        let mut deepest = 0;
        let mut depth = 0usize;
        for edge in html.tree.root().traverse() {
            match edge {
                ego_tree::iter::Edge::Open(n) if n.value().is_element() => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ego_tree::iter::Edge::Close(n) if n.value().is_element() => depth -= 1,
                _ => {}
            }
        }
        deepest
    }

    #[test]
    fn a_hundred_thousand_nested_divs_are_flattened_at_the_limit() {
        let n = 100_000;
        let mut page = "<div>".repeat(n);
        page.push_str("<img src=deep.jpg>");
        page.push_str(&"</div>".repeat(n));
        let parsed = document(&page);
        // html and body take two levels; every div below the limit was closed at once:
        // the work the tree builder does per tag is bounded by the limit, not by `n`.
        assert_eq!(max_depth(&parsed.html), MAX_DEPTH as usize + 1);
        assert_eq!(parsed.flattened, n as u64 - u64::from(MAX_DEPTH) + 2);
        let img = scraper::Selector::parse("img").unwrap();
        assert_eq!(parsed.html.select(&img).count(), 1, "the image deep down is kept");
        let div = scraper::Selector::parse("div").unwrap();
        assert_eq!(parsed.html.select(&div).count(), n, "no element is lost");
    }

    #[test]
    fn nesting_in_formatting_and_foreign_elements_is_bounded_too() {
        for open in ["<b>", "<span>", "<svg><g>", "<table><tr><td>", "<ul><li>"] {
            let page = open.repeat(5_000);
            let parsed = document(&page);
            let depth = max_depth(&parsed.html);
            // Elements the builder implies (`<tbody>` before a `<tr>`) may open with the
            // tag that implies them, a level or two below the limit before both close.
            assert!(depth <= MAX_DEPTH as usize + 3, "{open}: depth {depth}");
            assert!(parsed.flattened > 0, "{open}");
        }
    }

    #[test]
    fn ordinary_pages_are_untouched() {
        let page = "<div><p><a href=x><img src=a.jpg></a></p><script>var x = '<div>';</script></div>";
        let parsed = document(page);
        assert_eq!(parsed.flattened, 0);
        assert_eq!(parsed.html.html(), Html::parse_document(page).html());
    }

    #[test]
    fn fragments_are_read_with_scripting_off() {
        let parsed = fragment("<noscript><img src=inner.jpg></noscript><img src=a.jpg>");
        let img = scraper::Selector::parse("img").unwrap();
        assert_eq!(parsed.html.select(&img).count(), 2);
        let deep = fragment(&"<div>".repeat(20_000));
        assert!(max_depth(&deep.html) <= MAX_DEPTH as usize + 1);
    }
}
