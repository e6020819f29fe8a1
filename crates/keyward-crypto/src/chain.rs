//! [`Chain`]: certificates ordered leaf first, each issued by the next.
//!
//! Files from CAs and partners list certificates in any order (PKCS#7 even sorts them by
//! encoding), so [`Chain::new`] orders them by matching issuer to subject (and key
//! identifiers when present). A set that does not form a single path, such as two
//! unrelated certificates, is refused with a message naming the certificates. A chain may
//! stop below the root (the root is often not sent); [`Chain::root`] is then the topmost
//! certificate present.

use crate::certificate::Certificate;
use crate::error::CryptoError;

/// Longest certificate chain keyward accepts.
pub const MAX_CHAIN_LENGTH: usize = 16;

/// A certificate chain, leaf first, each certificate issued by the next when the chain is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain(Vec<Certificate>);

impl Chain {
    /// Orders `certs` leaf first. Exact duplicates are dropped.
    ///
    /// # Errors
    /// [`CryptoError::NoCertificates`] for an empty list, [`CryptoError::InvalidChain`] when
    /// the certificates do not form one path.
    ///
    /// At most [`MAX_CHAIN_LENGTH`] distinct certificates are accepted: ordering is quadratic
    /// and real chains are short.
    pub fn new(certs: Vec<Certificate>) -> Result<Self, CryptoError> {
        let mut unique: Vec<Certificate> = Vec::with_capacity(certs.len());
        for cert in certs {
            if !unique.contains(&cert) {
                unique.push(cert);
            }
        }
        if unique.is_empty() {
            return Err(CryptoError::NoCertificates(
                "no certificate was given".to_owned(),
            ));
        }
        if unique.len() > MAX_CHAIN_LENGTH {
            return Err(CryptoError::InvalidChain(format!(
                "{} certificates are more than a chain of at most {MAX_CHAIN_LENGTH} can hold",
                unique.len()
            )));
        }
        if unique.len() == 1 {
            return Ok(Self(unique));
        }

        // issuer_of[i] = candidates that may have issued certificate i (never itself).
        let n = unique.len();
        let issuers: Vec<Vec<usize>> = (0..n)
            .map(|i| {
                (0..n)
                    .filter(|&j| {
                        j != i && !unique[i].is_self_signed() && unique[i].is_issued_by(&unique[j])
                    })
                    .collect()
            })
            .collect();
        let issues_something = |j: usize| issuers.iter().any(|list| list.contains(&j));
        let leaves: Vec<usize> = (0..n).filter(|&j| !issues_something(j)).collect();
        let leaf = match leaves.as_slice() {
            [one] => *one,
            [] => {
                return Err(CryptoError::InvalidChain(
                    "the certificates do not form a chain: every certificate issued another one (a loop), so none is the end-entity certificate"
                        .to_owned(),
                ));
            }
            several => {
                let names: Vec<String> = several
                    .iter()
                    .map(|&i| format!("\"{}\"", unique[i].subject()))
                    .collect();
                return Err(CryptoError::InvalidChain(format!(
                    "the certificates do not form one chain: {} are each end-entity certificates (none of them issued another certificate in the input); give one certificate with its issuers",
                    names.join(", ")
                )));
            }
        };

        let mut order = vec![leaf];
        let mut current = leaf;
        while let Some(&next) = issuers[current].iter().find(|j| !order.contains(j)) {
            order.push(next);
            current = next;
        }
        if order.len() != n {
            let stray: Vec<String> = (0..n)
                .filter(|i| !order.contains(i))
                .map(|i| {
                    format!(
                        "\"{}\" (issued by \"{}\")",
                        unique[i].subject(),
                        unique[i].issuer()
                    )
                })
                .collect();
            return Err(CryptoError::InvalidChain(format!(
                "the certificates do not form one chain: {} not part of the chain of \"{}\"",
                if stray.len() == 1 {
                    format!("{} is", stray[0])
                } else {
                    format!("{} are", stray.join(", "))
                },
                unique[leaf].subject()
            )));
        }
        let mut slots: Vec<Option<Certificate>> = unique.into_iter().map(Some).collect();
        let ordered = order.into_iter().filter_map(|i| slots[i].take()).collect();
        Ok(Self(ordered))
    }

    /// The end-entity certificate.
    pub fn leaf(&self) -> &Certificate {
        // The vector is never empty: `new` refuses empty input.
        &self.0[0]
    }

    /// The topmost certificate (the root when the chain is complete).
    pub fn root(&self) -> &Certificate {
        &self.0[self.0.len() - 1]
    }

    /// All certificates, leaf first.
    pub fn certificates(&self) -> &[Certificate] {
        &self.0
    }

    /// Whether the topmost certificate is self-signed (the chain reaches a root).
    pub fn is_complete(&self) -> bool {
        self.root().is_self_signed()
    }

    /// All certificates as concatenated PEM blocks, leaf first.
    pub fn to_pem(&self) -> String {
        self.0.iter().map(Certificate::to_pem).collect()
    }
}

impl IntoIterator for Chain {
    type Item = Certificate;
    type IntoIter = std::vec::IntoIter<Certificate>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::{ca, leaf};

    fn subjects(chain: &Chain) -> Vec<String> {
        chain
            .certificates()
            .iter()
            .map(Certificate::subject)
            .collect()
    }

    #[test]
    fn orders_any_permutation_leaf_first() {
        let root = ca("Root", None);
        let inter = ca("Intermediate", Some(&root));
        let end = leaf("End", &inter);
        let expected = vec![
            "CN=End, O=Test Org",
            "CN=Intermediate, O=Test Org",
            "CN=Root, O=Test Org",
        ];
        let certs = [end.clone(), inter.cert.clone(), root.cert.clone()];
        for order in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let chain = Chain::new(order.iter().map(|&i| certs[i].clone()).collect()).unwrap();
            assert_eq!(subjects(&chain), expected, "{order:?}");
            assert_eq!(chain.leaf(), &end);
            assert_eq!(chain.root(), &root.cert);
            assert!(chain.is_complete());
        }
        // Duplicates are dropped.
        let chain = Chain::new(vec![
            root.cert.clone(),
            end.clone(),
            root.cert.clone(),
            inter.cert.clone(),
        ])
        .unwrap();
        assert_eq!(chain.certificates().len(), 3);
        assert_eq!(
            chain.to_pem(),
            format!(
                "{}{}{}",
                end.to_pem(),
                inter.cert.to_pem(),
                root.cert.to_pem()
            )
        );
    }

    #[test]
    fn partial_chains_and_single_certificates() {
        let root = ca("Root", None);
        let inter = ca("Intermediate", Some(&root));
        let end = leaf("End", &inter);
        let chain = Chain::new(vec![inter.cert.clone(), end.clone()]).unwrap();
        assert_eq!(chain.root(), &inter.cert);
        assert!(!chain.is_complete());
        let single = Chain::new(vec![end.clone()]).unwrap();
        assert_eq!(single.leaf(), single.root());
    }

    #[test]
    fn sets_that_are_not_one_path_are_refused() {
        let root = ca("Root", None);
        let inter = ca("Intermediate", Some(&root));
        let end = leaf("End", &inter);
        let other_root = ca("Other Root", None);
        let sibling = leaf("Sibling", &inter);
        // Same name as the intermediate, different key: the key identifiers do not match.
        let impostor = ca("Intermediate", Some(&other_root));

        let err = Chain::new(vec![]).unwrap_err();
        assert!(matches!(err, CryptoError::NoCertificates(_)));

        let cases: Vec<(Vec<Certificate>, &str)> = vec![
            (
                vec![end.clone(), inter.cert.clone(), other_root.cert.clone()],
                "\"CN=Other Root, O=Test Org\"",
            ),
            (
                vec![end.clone(), sibling.clone(), inter.cert.clone()],
                "are each end-entity certificates",
            ),
            (
                vec![end.clone(), impostor.cert.clone()],
                "are each end-entity certificates",
            ),
            (
                vec![root.cert.clone(), other_root.cert.clone()],
                "are each end-entity certificates",
            ),
        ];
        for (certs, needle) in cases {
            let err = Chain::new(certs).unwrap_err();
            assert!(err.is_user_error());
            let text = err.to_string();
            assert!(
                text.starts_with("the certificates do not form one chain"),
                "{text}"
            );
            assert!(text.contains(needle), "{text}");
        }
    }
}
