//! The order in which a stack's components are applied: each component after everything it
//! depends on, grouped into levels whose members do not depend on each other (so that a
//! caller may apply one level's components side by side).
//!
//! Only names and dependency lists are known here; nothing of what a component holds, of
//! Terraform or of the cluster.
//!
//! Teardown runs the levels backwards: `levels(..)?.iter().rev()`. A component is then
//! removed only after everything that depends on it, which is all deleting needs; no
//! separate function is offered for it.

use std::collections::HashMap;

use thiserror::Error;

/// Why components cannot be ordered. Names are quoted as the user wrote them; `index` is
/// the component's position in the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GraphProblem {
    #[error("component {name:?} is defined more than once")]
    DuplicateName { name: String, index: usize },
    #[error(
        "component {component:?} depends on {dependency:?}, which is not a component of this stack{}",
        suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default()
    )]
    UnknownDependency { component: String, index: usize, dependency: String, suggestion: Option<String> },
    #[error("component {component:?} depends on itself")]
    SelfDependency { component: String, index: usize },
    /// The components of the cycle in dependency order, the first repeated at the end.
    #[error("components depend on each other in a cycle: {}", .names.join(" -> "))]
    Cycle { names: Vec<String>, index: usize },
}

impl GraphProblem {
    /// The position of the component the problem is reported at.
    pub fn index(&self) -> usize {
        match self {
            GraphProblem::DuplicateName { index, .. }
            | GraphProblem::UnknownDependency { index, .. }
            | GraphProblem::SelfDependency { index, .. }
            | GraphProblem::Cycle { index, .. } => *index,
        }
    }
}

/// Groups components (name, names it depends on) into dependency levels, as indices into
/// `components`: level 0 holds the components without dependencies, level n those whose
/// deepest dependency is in level n - 1. Within a level, input order is kept, so the result
/// is the same for the same input. A dependency listed twice counts once.
///
/// Every problem is reported, in input order: each repeated name, each self-dependency, each
/// unknown dependency (with the closest name when one is close), then every cycle among the
/// rest (each component in at most one reported cycle).
pub fn levels(components: &[(&str, &[String])]) -> Result<Vec<Vec<usize>>, Vec<GraphProblem>> {
    let mut problems = Vec::new();
    let mut index_of: HashMap<&str, usize> = HashMap::with_capacity(components.len());
    for (index, (name, _)) in components.iter().enumerate() {
        if index_of.contains_key(name) {
            problems.push(GraphProblem::DuplicateName { name: name.to_string(), index });
        } else {
            index_of.insert(name, index);
        }
    }
    let mut dependencies: Vec<Vec<usize>> = Vec::with_capacity(components.len());
    for (index, (name, names)) in components.iter().enumerate() {
        let mut resolved = Vec::with_capacity(names.len());
        for dependency in names.iter() {
            match index_of.get(dependency.as_str()) {
                Some(_) if dependency == name => {
                    if !problems.iter().any(|p| matches!(p, GraphProblem::SelfDependency { index: i, .. } if *i == index)) {
                        problems.push(GraphProblem::SelfDependency { component: name.to_string(), index });
                    }
                }
                Some(&target) if !resolved.contains(&target) => resolved.push(target),
                Some(_) => {}
                None => problems.push(GraphProblem::UnknownDependency {
                    component: name.to_string(),
                    index,
                    dependency: dependency.clone(),
                    suggestion: closest(dependency, components.iter().map(|(n, _)| *n).filter(|n| n != name)),
                }),
            }
        }
        dependencies.push(resolved);
    }
    let mut cycles = Vec::new();
    while let Some(cycle) = find_cycle(&dependencies) {
        // Break it at its last edge and look again, so that every cycle gets named once.
        let (from, to) = (cycle[cycle.len() - 2], cycle[cycle.len() - 1]);
        dependencies[from].retain(|&d| d != to);
        cycles.push(GraphProblem::Cycle {
            names: cycle.iter().map(|&index| components[index].0.to_string()).collect(),
            index: cycle[0],
        });
    }
    problems.extend(cycles);
    if !problems.is_empty() {
        return Err(problems);
    }

    let depth = depths(&dependencies);
    let level_count = depth.iter().map(|d| d + 1).max().unwrap_or(0);
    let mut levels = vec![Vec::new(); level_count];
    for (index, &d) in depth.iter().enumerate() {
        levels[d].push(index);
    }
    Ok(levels)
}

/// The name closest to `wanted` by edit distance, when it is close enough to be a typo
/// (at most a third of its characters differ).
pub fn closest<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (wanted.chars().count() / 3).max(1);
    names
        .map(|name| (strsim::levenshtein(wanted, name), name))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name.to_string())
}

/// The length of each component's longest dependency chain. The graph must be acyclic.
/// Iterative (components taken in an order where dependencies come first), so a long
/// chain cannot overflow the stack.
fn depths(dependencies: &[Vec<usize>]) -> Vec<usize> {
    let mut depth: Vec<Option<usize>> = vec![None; dependencies.len()];
    for root in 0..dependencies.len() {
        let mut stack = vec![root];
        while let Some(&node) = stack.last() {
            if depth[node].is_some() {
                stack.pop();
                continue;
            }
            let pending: Vec<usize> = dependencies[node].iter().copied().filter(|&d| depth[d].is_none()).collect();
            if pending.is_empty() {
                depth[node] =
                    Some(dependencies[node].iter().filter_map(|&d| depth[d]).map(|d| d + 1).max().unwrap_or(0));
                stack.pop();
            } else {
                stack.extend(pending);
            }
        }
    }
    depth.into_iter().map(|d| d.unwrap_or(0)).collect()
}

/// A dependency cycle as a path of indices whose last element repeats the first, found by
/// depth-first search from the components in input order (so the same input always names
/// the same cycle). Iterative, for the same reason as [`depths`].
fn find_cycle(dependencies: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Unvisited,
        OnPath,
        Done,
    }
    let mut state = vec![State::Unvisited; dependencies.len()];
    for root in 0..dependencies.len() {
        if state[root] != State::Unvisited {
            continue;
        }
        // The current path, each node with the position of the next dependency to follow.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = State::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            match dependencies[node].get(*next).copied() {
                Some(dependency) => {
                    *next += 1;
                    match state[dependency] {
                        State::Unvisited => {
                            state[dependency] = State::OnPath;
                            path.push((dependency, 0));
                        }
                        State::OnPath => {
                            let start = path.iter().position(|&(n, _)| n == dependency).unwrap_or(0);
                            let mut cycle: Vec<usize> = path[start..].iter().map(|&(n, _)| n).collect();
                            cycle.push(dependency);
                            return Some(cycle);
                        }
                        State::Done => {}
                    }
                }
                None => {
                    state[node] = State::Done;
                    path.pop();
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the input from ("name", ["dependency", ...]) pairs.
    fn run(spec: &[(&str, &[&str])]) -> Result<Vec<Vec<usize>>, Vec<GraphProblem>> {
        let owned: Vec<(&str, Vec<String>)> =
            spec.iter().map(|(name, deps)| (*name, deps.iter().map(|d| d.to_string()).collect())).collect();
        let input: Vec<(&str, &[String])> = owned.iter().map(|(name, deps)| (*name, deps.as_slice())).collect();
        levels(&input)
    }

    fn texts(problems: Vec<GraphProblem>) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn no_components_no_levels() {
        assert_eq!(run(&[]), Ok(vec![]));
    }

    #[test]
    fn independent_components_share_level_zero_in_input_order() {
        assert_eq!(run(&[("c", &[]), ("a", &[]), ("b", &[])]), Ok(vec![vec![0, 1, 2]]));
    }

    #[test]
    fn a_chain_gives_one_level_each() {
        assert_eq!(
            run(&[("app", &["db"]), ("db", &["storage"]), ("storage", &[])]),
            Ok(vec![vec![2], vec![1], vec![0]])
        );
    }

    #[test]
    fn level_is_one_more_than_the_deepest_dependency() {
        // flux <- cert-manager <- ingress; monitoring needs flux and ingress; logging needs flux only.
        let result = run(&[
            ("monitoring", &["flux", "ingress"]),
            ("flux", &[]),
            ("cert-manager", &["flux"]),
            ("ingress", &["cert-manager"]),
            ("logging", &["flux"]),
        ]);
        assert_eq!(result, Ok(vec![vec![1], vec![2, 4], vec![3], vec![0]]));
    }

    #[test]
    fn repeated_dependencies_count_once() {
        assert_eq!(run(&[("a", &["b", "b"]), ("b", &[])]), Ok(vec![vec![1], vec![0]]));
    }

    #[test]
    fn duplicate_names_are_refused_at_each_repeat() {
        assert_eq!(
            run(&[("a", &[]), ("b", &[]), ("a", &[]), ("a", &[])]),
            Err(vec![
                GraphProblem::DuplicateName { name: "a".into(), index: 2 },
                GraphProblem::DuplicateName { name: "a".into(), index: 3 }
            ])
        );
    }

    #[test]
    fn unknown_dependencies_name_both_and_the_closest_name() {
        let problems = run(&[("database", &[]), ("app", &["database", "databse"]), ("web", &["zzz"])]).unwrap_err();
        assert_eq!(
            problems[0],
            GraphProblem::UnknownDependency {
                component: "app".into(),
                index: 1,
                dependency: "databse".into(),
                suggestion: Some("database".into())
            }
        );
        assert_eq!(
            texts(problems),
            [
                "component \"app\" depends on \"databse\", which is not a component of this stack (did you mean \"database\"?)",
                "component \"web\" depends on \"zzz\", which is not a component of this stack",
            ]
        );
    }

    #[test]
    fn self_dependencies_are_refused() {
        let problems = run(&[("a", &[]), ("b", &["a", "b"])]).unwrap_err();
        assert_eq!(problems, [GraphProblem::SelfDependency { component: "b".into(), index: 1 }]);
        assert_eq!(texts(problems), ["component \"b\" depends on itself"]);
    }

    #[test]
    fn cycles_are_reported_as_a_path() {
        let problems = run(&[("x", &[]), ("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]).unwrap_err();
        assert_eq!(problems, [GraphProblem::Cycle { names: vec!["a".into(), "b".into(), "c".into(), "a".into()], index: 1 }]);
        assert_eq!(texts(problems), ["components depend on each other in a cycle: a -> b -> c -> a"]);
    }

    #[test]
    fn a_cycle_reached_through_other_components_names_only_the_cycle() {
        let problems = run(&[("top", &["mid"]), ("mid", &["p"]), ("p", &["q"]), ("q", &["p"])]).unwrap_err();
        assert_eq!(texts(problems), ["components depend on each other in a cycle: p -> q -> p"]);
    }

    #[test]
    fn every_cycle_is_named() {
        let problems = run(&[("a", &["b"]), ("b", &["a"]), ("c", &["d"]), ("d", &["c"])]).unwrap_err();
        assert_eq!(
            texts(problems),
            ["components depend on each other in a cycle: a -> b -> a", "components depend on each other in a cycle: c -> d -> c"]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = run(&[("a", &["zzz"]), ("b", &["a"]), ("a", &["b"]), ("c", &["c"]), ("d", &["e"]), ("e", &["d"])]).unwrap_err();
        let kinds: Vec<&str> = problems
            .iter()
            .map(|p| match p {
                GraphProblem::DuplicateName { .. } => "duplicate",
                GraphProblem::SelfDependency { .. } => "self",
                GraphProblem::UnknownDependency { .. } => "unknown",
                GraphProblem::Cycle { .. } => "cycle",
            })
            .collect();
        // The repeated "a" is a component of its own: b depends on the first one, no cycle.
        assert_eq!(kinds, ["duplicate", "unknown", "self", "cycle"], "{problems:?}");
        assert_eq!(problems.iter().map(GraphProblem::index).collect::<Vec<_>>(), [2, 0, 3, 4]);
    }

    #[test]
    fn closest_name_only_when_it_is_a_likely_typo() {
        let names = ["cert-manager", "ingress-nginx", "flux"];
        assert_eq!(closest("cert-manger", names.into_iter()).as_deref(), Some("cert-manager"));
        assert_eq!(closest("flx", names.into_iter()).as_deref(), Some("flux"));
        assert_eq!(closest("loki", names.into_iter()), None);
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        let names: Vec<String> = (0..100_000).map(|i| format!("c{i}")).collect();
        let deps: Vec<Vec<String>> =
            (0..names.len()).map(|i| if i == 0 { vec![] } else { vec![names[i - 1].clone()] }).collect();
        let input: Vec<(&str, &[String])> = names.iter().zip(&deps).map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        let levels = levels(&input).unwrap();
        assert_eq!(levels.len(), names.len());
        assert_eq!(levels[99_999], vec![99_999]);

        let mut cyclic = deps.clone();
        cyclic[0] = vec![names[names.len() - 1].clone()];
        let input: Vec<(&str, &[String])> =
            names.iter().zip(&cyclic).map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        match super::levels(&input) {
            Err(problems) => match problems.as_slice() {
                [GraphProblem::Cycle { names: path, .. }] => assert_eq!(path.len(), names.len() + 1),
                other => panic!("expected one cycle, got {} problems", other.len()),
            },
            Ok(levels) => panic!("expected a cycle, got {} levels", levels.len()),
        }
    }

    #[test]
    fn every_level_only_depends_on_earlier_levels() {
        let spec: &[(&str, &[&str])] =
            &[("e", &["d", "a"]), ("d", &["b", "c"]), ("c", &["a"]), ("b", &["a"]), ("a", &[]), ("f", &["c"])];
        let levels = run(spec).unwrap();
        let level_of: HashMap<&str, usize> =
            levels.iter().enumerate().flat_map(|(l, members)| members.iter().map(move |&i| (spec[i].0, l))).collect();
        assert_eq!(level_of.len(), spec.len());
        for (name, deps) in spec {
            for dep in *deps {
                assert!(level_of[dep] < level_of[name], "{dep} must come before {name}");
            }
            if let Some(deepest) = deps.iter().map(|d| level_of[d]).max() {
                assert_eq!(level_of[name], deepest + 1, "{name} must come right after its deepest dependency");
            }
        }
    }
}
