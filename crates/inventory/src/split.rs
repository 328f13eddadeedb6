//! `split`: the keys that cut a location into parts holding about as many
//! keys each, for scanning on many machines (`scan --shard I/N`).
//!
//! Only a full listing counts a bucket's keys, so the split estimates. It
//! reads the keys as a tree of their characters: a node is every key
//! starting with some prefix, and its children are the characters that
//! follow where its keys first differ. A node is explored with one-entry
//! listings from a key ([`Probe`]): the key after its first key shows where
//! the deepest keys of its first key differ; skipping past each child in
//! turn shows the next one, until a key past them all shows the level
//! above, up to the node itself. Each level's first child is so explored
//! down to single keys, the others are taken to hold as many keys as their
//! explored siblings on average (Knuth's estimate of a tree's size from
//! one path down it). Then the unexplored node that seems to hold the most
//! keys is explored, and the next, while [`BUDGET`] lasts: the tree grows
//! deeper where the keys are dense. Cut `i` falls where the estimated count
//! reaches `i / N` of the whole: in an unexplored node, where its explored
//! sibling would put it, under the node's own prefix.
//!
//! Where the keys are spread evenly at some depth (numbered keys, hashes,
//! keys under a long common prefix) the estimate is close and so are the
//! parts. It counts keys, not versions: one key holding most of the
//! versions makes its part big. A node unlike its explored siblings — one
//! sub-prefix holding most keys among others holding few — is only seen
//! for what it is if it was explored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use s3io::{S3Error, S3};

use crate::bounds::Probe;
use crate::keyspace::common_prefix;

/// Listings spent exploring, after which no more nodes are begun.
const BUDGET: u64 = 200;
/// Nodes explored at the same time.
const AT_ONCE: usize = 2;
/// Nodes seeming to hold less than this share of a part are not explored:
/// however wrong their estimate, a cut moves by less.
const MIN_PART_SHARE: f64 = 0.25;
/// Explored nodes of one depth that an unexplored node's estimate is taken
/// from, at least, where there are as many ([`Tree::estimate`]).
const SAMPLES: usize = 3;
/// Children of one node listed at most; past them, keys still under the
/// node go uncounted (only a character position of more than this many
/// different characters has them: ASCII has 128).
const MAX_CHILDREN: usize = 128;
/// A key marker past every key that starts with the text before it.
const LAST: char = char::MAX;

/// Where `split` cut a location.
#[derive(Debug, Clone)]
pub struct Split {
    /// The keys between the parts, ascending: part `i` holds the keys after
    /// cut `i - 1` up to cut `i` included. Fewer than `parts - 1` when the
    /// location holds too few keys.
    pub cuts: Vec<String>,
    /// Estimated keys of each part (one more than `cuts`).
    pub parts: Vec<f64>,
    /// Estimated keys of the location.
    pub keys: f64,
    /// ListObjectVersions requests spent.
    pub requests: u64,
}

/// Cuts `base` of `bucket` into `parts` parts.
pub async fn split(s3: &S3, bucket: &str, base: &str, parts: usize) -> Result<Split, S3Error> {
    let spent = AtomicU64::new(0);
    let probe = Probe {
        s3,
        bucket,
        spent: &spent,
    };
    let Some(first) = probe.first_key_after(base, None).await? else {
        return Ok(Split {
            cuts: Vec::new(),
            parts: vec![0.0],
            keys: 0.0,
            requests: spent.load(Ordering::Relaxed),
        });
    };
    let mut tree = Tree::new(explore(&probe, base, first).await?);
    while spent.load(Ordering::Relaxed) < BUDGET {
        let nodes = &tree.nodes;
        let min_keys = nodes[ROOT].keys / parts as f64 * MIN_PART_SHARE;
        let mut picks: Vec<usize> = (0..nodes.len())
            .filter(|&i| matches!(nodes[i].body, Shape::Unexplored) && nodes[i].keys >= min_keys)
            .collect();
        // The biggest first; of equals, the last (the last child of a level
        // is the one likeliest to be short).
        picks.sort_by(|&a, &b| {
            (nodes[b].keys.total_cmp(&nodes[a].keys))
                .then_with(|| nodes[b].prefix.cmp(&nodes[a].prefix))
        });
        picks.truncate(AT_ONCE);
        if picks.is_empty() {
            break;
        }
        let found = futures::future::try_join_all(
            picks
                .iter()
                .map(|&i| explore(&probe, &nodes[i].prefix, nodes[i].first.clone())),
        )
        .await?;
        for (i, found) in picks.into_iter().zip(found) {
            tree.graft(i, found.body);
        }
        tree.estimate();
    }
    Ok(tree.cut(parts, spent.load(Ordering::Relaxed)))
}

/// Every key starting with `prefix`, as far as [`explore`] found it.
#[derive(Debug)]
struct Found {
    prefix: String,
    /// Its first key.
    first: String,
    body: Shape<Found>,
}

/// What is known of a node's keys; `C` is how its children are held.
#[derive(Debug)]
enum Shape<C> {
    /// `first` alone.
    Key,
    /// Not explored.
    Unexplored,
    /// One child for each character after the point where its keys first
    /// differ, in key order (the key ending at that point, if any, first).
    Branch(Vec<C>),
}

/// The explored nodes, the root first.
struct Tree {
    nodes: Vec<Node>,
}

const ROOT: usize = 0;

#[derive(Debug)]
struct Node {
    prefix: String,
    first: String,
    body: Shape<usize>,
    parent: Option<usize>,
    /// Estimated keys ([`Tree::estimate`]).
    keys: f64,
}

impl Node {
    /// Its place in the tree: how many characters its prefix has.
    fn depth(&self) -> usize {
        self.prefix.chars().count()
    }
}

impl Tree {
    fn new(root: Found) -> Tree {
        let mut tree = Tree { nodes: Vec::new() };
        tree.add(root, None);
        tree.estimate();
        tree
    }

    fn add(&mut self, found: Found, parent: Option<usize>) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node {
            prefix: found.prefix,
            first: found.first,
            body: Shape::Unexplored,
            parent,
            keys: 0.0,
        });
        self.graft(id, found.body);
        id
    }

    /// Node `id` as explored.
    fn graft(&mut self, id: usize, body: Shape<Found>) {
        self.nodes[id].body = match body {
            Shape::Key => Shape::Key,
            Shape::Unexplored => Shape::Unexplored,
            Shape::Branch(children) => Shape::Branch(
                children
                    .into_iter()
                    .map(|c| self.add(c, Some(id)))
                    .collect(),
            ),
        };
    }

    /// Sets every node's estimated keys: an explored node's are its
    /// children's, an unexplored node's the median of the explored nodes of
    /// its depth under its parent — or, where the parent has fewer than
    /// [`SAMPLES`] of them, under the nearest ancestor that has as many (else
    /// the root). One explored node is one sample of how many keys the
    /// nodes of its depth hold, and where the keys are few it is a poor one
    /// (a node of five keys on average may hold one, or nine): pooling the
    /// samples of one depth is what a key space uniform at that depth
    /// allows. The median, not the mean, so that a few dense nodes of one
    /// sub-prefix do not make every sparse one of the others count as dense.
    fn estimate(&mut self) {
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        // Deepest first; at one depth, keys (a key ending where its
        // siblings part has its parent's depth), then the other explored
        // nodes, then the unexplored.
        order.sort_by_key(|&i| {
            let node = &self.nodes[i];
            let rank = match node.body {
                Shape::Key => 0,
                Shape::Branch(_) => 1,
                Shape::Unexplored => 2,
            };
            (std::cmp::Reverse(node.depth()), rank)
        });
        // (ancestor, depth) → the keys of the explored nodes of that depth
        // under it.
        let mut samples: HashMap<(usize, usize), Vec<f64>> = HashMap::new();
        for i in order {
            let depth = self.nodes[i].depth();
            let keys = match &self.nodes[i].body {
                Shape::Key => 1.0,
                Shape::Branch(children) => children.iter().map(|&c| self.nodes[c].keys).sum(),
                Shape::Unexplored => {
                    self.nodes[i].keys = self.pooled(i, depth, &samples);
                    continue;
                }
            };
            self.nodes[i].keys = keys;
            // A key ending where its siblings part is no sample of their
            // depth (its prefix is one character shorter than theirs).
            let node = &self.nodes[i];
            if matches!(node.body, Shape::Key) && node.prefix == node.first {
                continue;
            }
            let mut up = self.nodes[i].parent;
            while let Some(a) = up {
                samples.entry((a, depth)).or_default().push(keys);
                up = self.nodes[a].parent;
            }
        }
    }

    /// The estimated keys of unexplored node `i`, from `samples`.
    fn pooled(&self, i: usize, depth: usize, samples: &HashMap<(usize, usize), Vec<f64>>) -> f64 {
        let mut widest = None;
        let mut up = self.nodes[i].parent;
        while let Some(a) = up {
            if let Some(keys) = samples.get(&(a, depth)) {
                if keys.len() >= SAMPLES {
                    return median(keys);
                }
                widest = Some(median(keys));
            }
            up = self.nodes[a].parent;
        }
        // Nothing of its depth explored: its only explored sibling is the
        // key ending where they part.
        widest.unwrap_or(1.0)
    }

    /// The cuts into `parts`.
    fn cut(&self, parts: usize, requests: u64) -> Split {
        let keys = self.nodes[ROOT].keys;
        let mut cuts: Vec<String> = Vec::with_capacity(parts.saturating_sub(1));
        let mut below = vec![0.0];
        for i in 1..parts {
            let (cut, left) = self.cut_at(ROOT, keys * i as f64 / parts as f64);
            if cuts.last().is_none_or(|last| cut.as_str() > last.as_str()) {
                cuts.push(cut);
                below.push(left);
            }
        }
        below.push(keys);
        Split {
            cuts,
            parts: below.windows(2).map(|w| (w[1] - w[0]).max(0.0)).collect(),
            keys,
            requests,
        }
    }

    /// The cut `t` estimated keys into node `id` (0 ≤ t ≤ its keys), and how
    /// many of its estimated keys fall up to it. A cut before a node is its
    /// prefix, after a key the key itself.
    fn cut_at(&self, id: usize, t: f64) -> (String, f64) {
        let node = &self.nodes[id];
        let children = match &node.body {
            Shape::Branch(children) => children,
            // Before or after its one key (or all of them, as one).
            _ if t < node.keys / 2.0 && node.prefix != node.first => {
                return (node.prefix.clone(), 0.0)
            }
            _ => return (node.first.clone(), node.keys),
        };
        let mut below = 0.0;
        for (i, &c) in children.iter().enumerate() {
            let child = &self.nodes[c];
            if t > below + child.keys && i + 1 < children.len() {
                below += child.keys;
                continue;
            }
            let t = (t - below).clamp(0.0, child.keys);
            let (cut, left) = match (&child.body, self.model(children, i)) {
                (Shape::Unexplored, Some(m)) => {
                    let model = &self.nodes[m];
                    let scale = model.keys / child.keys;
                    let (cut, left) = self.cut_at(m, t * scale);
                    let moved = format!("{}{}", child.prefix, &cut[model.prefix.len()..]);
                    (moved, left / scale)
                }
                _ => self.cut_at(c, t),
            };
            return (cut, below + left);
        }
        (node.first.clone(), 0.0)
    }

    /// The explored sibling whose shape an unexplored `children[i]` is
    /// taken to have: the nearest that has children. (With none, it is cut
    /// as one.)
    fn model(&self, children: &[usize], i: usize) -> Option<usize> {
        children
            .iter()
            .enumerate()
            .filter(|(_, &c)| matches!(self.nodes[c].body, Shape::Branch(_)))
            .min_by_key(|(j, _)| j.abs_diff(i))
            .map(|(_, &c)| c)
    }
}

/// The middle of `values` (of the two middle ones, their mean).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let half = sorted.len() / 2;
    match sorted.len() % 2 {
        1 => sorted[half],
        _ => (sorted[half - 1] + sorted[half]) / 2.0,
    }
}

/// `children`'s prefix for `key`: `at` and the character after it in
/// `key` (`key` itself if it ends at `at`).
fn child_prefix(at: &str, key: &str) -> String {
    match key[at.len()..].chars().next() {
        Some(c) => format!("{at}{c}"),
        None => key.to_owned(),
    }
}

/// The node of the keys under `prefix` whose first key is `first`: the
/// levels from `first` up to `prefix`, each with all its children listed
/// (their first keys found on the way), those holding `first` explored.
async fn explore(probe: &Probe<'_>, prefix: &str, first: String) -> Result<Found, S3Error> {
    let found = |prefix: String, first: String, body| Found {
        prefix,
        first,
        body,
    };
    let Some(mut next) = probe.first_key_after(prefix, Some(&first)).await? else {
        return Ok(found(prefix.to_owned(), first, Shape::Key));
    };
    // The node holding `first` that the last level completed: every key
    // from `first` up to `next` (excluded) is in it.
    let mut done = Shape::Key;
    loop {
        // A level: keys from `first` on that differ only after `at`.
        let at = common_prefix(&first, &next).to_owned();
        let mut children = vec![found(child_prefix(&at, &first), first.clone(), done)];
        let mut child_first = next;
        let after_level = loop {
            if children.len() == MAX_CHILDREN {
                break skip_past(probe, prefix, &at).await?;
            }
            let child = child_prefix(&at, &child_first);
            let after = skip_past(probe, prefix, &child).await?;
            children.push(found(child, child_first, Shape::Unexplored));
            match after {
                Some(key) if key.starts_with(at.as_str()) => child_first = key,
                after => break after,
            }
        };
        match after_level {
            Some(key) => {
                next = key;
                done = Shape::Branch(children);
            }
            None => return Ok(found(prefix.to_owned(), first, Shape::Branch(children))),
        }
    }
}

/// The first key under `prefix` past every key starting with `start`.
async fn skip_past(
    probe: &Probe<'_>,
    prefix: &str,
    start: &str,
) -> Result<Option<String>, S3Error> {
    let mut marker = format!("{start}{LAST}");
    loop {
        match probe.first_key_after(prefix, Some(&marker)).await? {
            // A key holding the marker's last character itself: past it too.
            Some(key) if key.starts_with(start) => marker = format!("{key}{LAST}"),
            found => return Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(prefix: &str, first: &str, body: Shape<Found>) -> Found {
        Found {
            prefix: prefix.into(),
            first: first.into(),
            body,
        }
    }

    fn key(prefix: &str, first: &str) -> Found {
        node(prefix, first, Shape::Key)
    }

    fn unexplored(prefix: &str, first: &str) -> Found {
        node(prefix, first, Shape::Unexplored)
    }

    /// Keys `n0`, `n00.jpg` to `n29.jpg` as a first exploration from `n0`
    /// would leave them: the key `n0` explored, `n00` to `n09` not (taken to
    /// hold a key each), `n1` and `n2` not (taken to be like `n0`).
    fn numbered() -> Tree {
        let mut low = vec![key("n0", "n0")];
        low.extend((0..10).map(|d| unexplored(&format!("n0{d}"), &format!("n0{d}.jpg"))));
        Tree::new(node(
            "",
            "n0",
            Shape::Branch(vec![
                node("n0", "n0", Shape::Branch(low)),
                unexplored("n1", "n10.jpg"),
                unexplored("n2", "n20.jpg"),
            ]),
        ))
    }

    #[test]
    fn unexplored_nodes_count_as_the_explored_nodes_of_their_depth() {
        let mut tree = numbered();
        assert_eq!(tree.nodes[ROOT].keys, 33.0);
        // Explored, n2 turns out to hold one key: n1 now counts as the mean
        // of n0 and n2.
        let n2 = tree.nodes.iter().position(|n| n.prefix == "n2").unwrap();
        tree.graft(n2, Shape::Key);
        tree.estimate();
        assert_eq!(tree.nodes[ROOT].keys, 11.0 + 6.0 + 1.0);

        // Where a node's parent has fewer than SAMPLES explored nodes of
        // its depth, the nearest ancestor that has as many speaks for them.
        let level = |c: char, keys: usize| {
            let mut children = vec![node(
                &format!("{c}0"),
                &format!("{c}00"),
                match keys {
                    1 => Shape::Key,
                    n => Shape::Branch(
                        (0..n)
                            .map(|k| key(&format!("{c}0{k}"), &format!("{c}0{k}")))
                            .collect(),
                    ),
                },
            )];
            children.extend((1..4).map(|d| unexplored(&format!("{c}{d}"), &format!("{c}{d}0"))));
            node(&c.to_string(), &format!("{c}00"), Shape::Branch(children))
        };
        let tree = Tree::new(node(
            "",
            "a00",
            Shape::Branch(vec![
                level('a', 1),
                level('b', 11),
                level('c', 3),
                unexplored("d", "d00"),
            ]),
        ));
        let keys = |prefix: &str| tree.nodes.iter().find(|n| n.prefix == prefix).unwrap().keys;
        // a0, b0 and c0 hold 1, 11 and 3 keys: each of a1 … c3 counts as
        // their median (one dense node does not make the others dense).
        assert_eq!(keys("a1"), 3.0);
        assert_eq!(keys("a"), 1.0 + 9.0);
        assert_eq!(keys("b"), 11.0 + 9.0);
        assert_eq!(keys("d"), 12.0);
        assert_eq!(tree.nodes[ROOT].keys, 10.0 + 20.0 + 12.0 + 12.0);
    }

    #[test]
    fn cuts_in_unexplored_nodes_fall_where_an_explored_sibling_would_put_them() {
        let tree = numbered();
        let cut = |t: f64| tree.cut_at(ROOT, t).0;
        // A third of the way: the end of n0, its last key (an unexplored one).
        assert_eq!(cut(11.0), "n09.jpg");
        // Half way into n1: where half way into n0 is, under n1's prefix;
        // before or after a node that holds one key.
        assert_eq!(tree.cut_at(ROOT, 11.0 + 5.5), ("n14.jpg".to_owned(), 17.0));
        assert_eq!(tree.cut_at(ROOT, 11.0 + 5.4), ("n14".to_owned(), 16.0));
        assert_eq!(cut(1.0), "n0");
        // Ascending throughout.
        let cuts: Vec<String> = (1..33).map(|t| cut(t as f64)).collect();
        for w in cuts.windows(2) {
            assert!(w[0] <= w[1], "{cuts:?}");
        }
    }

    #[test]
    fn the_cuts_of_a_tree_are_ascending_and_say_their_parts() {
        let split = numbered().cut(3, 7);
        assert_eq!(split.cuts.len(), 2);
        assert!(split.cuts[0] < split.cuts[1]);
        assert_eq!(split.parts.len(), 3);
        assert!((split.parts.iter().sum::<f64>() - 33.0).abs() < 1e-9);
        for part in &split.parts {
            assert!((*part - 11.0).abs() <= 1.0, "{:?}", split.parts);
        }
        assert_eq!(split.requests, 7);
        // More parts than keys: no cut twice.
        let split = Tree::new(key("a", "a")).cut(4, 1);
        assert!(split.cuts.len() < 3);
    }

    #[test]
    fn child_prefixes_take_one_character_or_the_key_ending_there() {
        assert_eq!(child_prefix("img/", "img/a1"), "img/a");
        assert_eq!(child_prefix("img/", "img/é1"), "img/é");
        assert_eq!(child_prefix("img/", "img/"), "img/");
    }
}
