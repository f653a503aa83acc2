-- The accounting rules the fast path needs, in SQL. Each has a Python twin that tests hold it to
-- (tests/credits/test_sql_rules.py): change both, or a test fails.

-- credits.pricing.cost: ceil(prompt × input + completion × output), in exact numeric arithmetic.
CREATE OR REPLACE FUNCTION solaris_call_cost(
    p_prompt bigint, p_completion bigint, p_input_weight numeric, p_output_weight numeric
) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ceil(p_prompt::numeric * p_input_weight
                + p_completion::numeric * p_output_weight)::bigint;
$$;

-- credits.services.grants.due_grants: a grant whose time has come still has a remainder to book.
-- PL/pgSQL, not SQL: PostgreSQL cannot inline an SQL function with a sub-select, and would plan it
-- again at every call; PL/pgSQL keeps its plan for the session.
CREATE OR REPLACE FUNCTION solaris_grant_due(p_account bigint, p_now timestamptz)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM credits_grant g
        WHERE g.account_id = p_account AND g.expires_at <= p_now AND g.remaining > 0
    );
END;
$$;

-- credits.selectors.grant_totals: the original total of the active grants (a spent grant without
-- expiry drops out), what is left on grants not expired, and what is left on expired ones.
CREATE OR REPLACE FUNCTION solaris_grant_totals(p_account bigint, p_now timestamptz)
RETURNS TABLE (o_granted bigint, o_left bigint, o_expired_left bigint)
LANGUAGE sql STABLE AS $$
    SELECT
        COALESCE(SUM(g.amount) FILTER (
            WHERE (g.expires_at IS NULL OR g.expires_at > p_now)
              AND NOT (g.expires_at IS NULL AND g.remaining = 0)), 0)::bigint,
        COALESCE(SUM(g.remaining) FILTER (
            WHERE g.expires_at IS NULL OR g.expires_at > p_now), 0)::bigint,
        COALESCE(SUM(g.remaining) FILTER (WHERE g.expires_at <= p_now), 0)::bigint
    FROM credits_grant g WHERE g.account_id = p_account;
$$;

-- credits.services.ledger.AccountBook.draw: take p_amount from the grants, the one that expires
-- first first, grants without expiry last; returns what no grant covered.
CREATE OR REPLACE FUNCTION solaris_grants_draw(p_account bigint, p_amount bigint)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_left bigint := p_amount;
    v_take bigint;
    v_grant record;
BEGIN
    FOR v_grant IN
        SELECT g.id, g.remaining FROM credits_grant g
        WHERE g.account_id = p_account AND g.remaining > 0
        ORDER BY g.expires_at ASC NULLS LAST, g.id
    LOOP
        EXIT WHEN v_left = 0;
        v_take := LEAST(v_grant.remaining, v_left);
        UPDATE credits_grant g SET remaining = g.remaining - v_take WHERE g.id = v_grant.id;
        v_left := v_left - v_take;
    END LOOP;
    RETURN v_left;
END;
$$;
