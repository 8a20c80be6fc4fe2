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

/// Why components cannot be ordered. Names are quoted as the user wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GraphProblem {
    #[error("component {0:?} is defined more than once")]
    DuplicateName(String),
    #[error("component {component:?} depends on {dependency:?}, which is not a component of this stack")]
    UnknownDependency { component: String, dependency: String },
    #[error("component {0:?} depends on itself")]
    SelfDependency(String),
    /// The components of the cycle in dependency order, the first repeated at the end.
    #[error("components depend on each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// Groups components (name, names it depends on) into dependency levels, as indices into
/// `components`: level 0 holds the components without dependencies, level n those whose
/// deepest dependency is in level n - 1. Within a level, input order is kept, so the result
/// is the same for the same input. A dependency listed twice counts once.
///
/// Problems are reported one at a time, in this order: duplicate names, self-dependencies,
/// unknown dependencies (each in input order), then a cycle.
pub fn levels(components: &[(&str, &[String])]) -> Result<Vec<Vec<usize>>, GraphProblem> {
    let mut index_of: HashMap<&str, usize> = HashMap::with_capacity(components.len());
    for (index, (name, _)) in components.iter().enumerate() {
        if index_of.insert(name, index).is_some() {
            return Err(GraphProblem::DuplicateName(name.to_string()));
        }
    }
    if let Some((name, _)) = components.iter().find(|(name, dependencies)| dependencies.iter().any(|d| d == name)) {
        return Err(GraphProblem::SelfDependency(name.to_string()));
    }
    let mut dependencies: Vec<Vec<usize>> = Vec::with_capacity(components.len());
    for (name, names) in components {
        let mut resolved = Vec::with_capacity(names.len());
        for dependency in names.iter() {
            match index_of.get(dependency.as_str()) {
                Some(&index) if !resolved.contains(&index) => resolved.push(index),
                Some(_) => {}
                None => {
                    return Err(GraphProblem::UnknownDependency {
                        component: name.to_string(),
                        dependency: dependency.clone(),
                    })
                }
            }
        }
        dependencies.push(resolved);
    }
    if let Some(cycle) = find_cycle(&dependencies) {
        return Err(GraphProblem::Cycle(cycle.into_iter().map(|index| components[index].0.to_string()).collect()));
    }

    let depth = depths(&dependencies);
    let level_count = depth.iter().map(|d| d + 1).max().unwrap_or(0);
    let mut levels = vec![Vec::new(); level_count];
    for (index, &d) in depth.iter().enumerate() {
        levels[d].push(index);
    }
    Ok(levels)
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
    fn run(spec: &[(&str, &[&str])]) -> Result<Vec<Vec<usize>>, GraphProblem> {
        let owned: Vec<(&str, Vec<String>)> =
            spec.iter().map(|(name, deps)| (*name, deps.iter().map(|d| d.to_string()).collect())).collect();
        let input: Vec<(&str, &[String])> = owned.iter().map(|(name, deps)| (*name, deps.as_slice())).collect();
        levels(&input)
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
    fn duplicate_names_are_refused() {
        assert_eq!(run(&[("a", &[]), ("b", &[]), ("a", &[])]), Err(GraphProblem::DuplicateName("a".into())));
    }

    #[test]
    fn unknown_dependencies_name_both() {
        let problem = run(&[("a", &[]), ("app", &["a", "databse"])]).unwrap_err();
        assert_eq!(problem, GraphProblem::UnknownDependency { component: "app".into(), dependency: "databse".into() });
        assert_eq!(
            problem.to_string(),
            "component \"app\" depends on \"databse\", which is not a component of this stack"
        );
    }

    #[test]
    fn self_dependencies_are_refused() {
        let problem = run(&[("a", &[]), ("b", &["a", "b"])]).unwrap_err();
        assert_eq!(problem, GraphProblem::SelfDependency("b".into()));
        assert_eq!(problem.to_string(), "component \"b\" depends on itself");
    }

    #[test]
    fn cycles_are_reported_as_a_path() {
        let problem = run(&[("x", &[]), ("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]).unwrap_err();
        assert_eq!(problem, GraphProblem::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
        assert_eq!(problem.to_string(), "components depend on each other in a cycle: a -> b -> c -> a");
    }

    #[test]
    fn a_cycle_reached_through_other_components_names_only_the_cycle() {
        let problem = run(&[("top", &["mid"]), ("mid", &["p"]), ("p", &["q"]), ("q", &["p"])]).unwrap_err();
        assert_eq!(problem, GraphProblem::Cycle(vec!["p".into(), "q".into(), "p".into()]));
    }

    #[test]
    fn two_component_cycle() {
        let problem = run(&[("a", &["b"]), ("b", &["a"])]).unwrap_err();
        assert_eq!(problem.to_string(), "components depend on each other in a cycle: a -> b -> a");
    }

    #[test]
    fn problems_come_in_a_fixed_order() {
        // A duplicate wins over an unknown dependency and a cycle.
        assert_eq!(run(&[("a", &["zzz"]), ("b", &["a"]), ("a", &["b"])]), Err(GraphProblem::DuplicateName("a".into())));
        // A self-dependency wins over an unknown dependency listed earlier.
        assert_eq!(run(&[("a", &["zzz"]), ("b", &["b"])]), Err(GraphProblem::SelfDependency("b".into())));
        // An unknown dependency wins over a cycle.
        assert_eq!(
            run(&[("a", &["b"]), ("b", &["a"]), ("c", &["zzz"])]),
            Err(GraphProblem::UnknownDependency { component: "c".into(), dependency: "zzz".into() })
        );
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
            Err(GraphProblem::Cycle(path)) => assert_eq!(path.len(), names.len() + 1),
            other => panic!("expected a cycle, got {:?}", other.map(|l| l.len())),
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
