-- The workload behind all-types.*.json: Debezium 3.6.0.Final's PostgreSQL connector (pgoutput,
-- snapshot.mode=initial, provide.transaction.metadata=true, every other option at its default) with
-- Kafka Connect 4.3.0's JsonConverter (schemas.enable=true), topic.prefix=dbz, against PostgreSQL 15.
-- The first part runs before the connector starts (the snapshot), the second while it streams (time zone UTC).
-- Part 1
create type mood as enum ('sad','ok','happy');
create table public.all_types (
  id int primary key, small smallint not null default 7, big bigint, num_fixed numeric(12,2), num_var numeric,
  real4 real, dbl double precision, flag boolean default true, txt text default 'new', vc varchar(20), ch char(5),
  d date, t time, ttz timetz, ts timestamp, ts3 timestamp(3), tstz timestamptz, iv interval, u uuid, j json,
  jb jsonb, b bytea, arr int[], tarr text[], e mood, bits bit(3), vbits varbit, ip inet, net cidr, mac macaddr,
  m money, x xml, p point, r int4range, o oid
);
alter table public.all_types replica identity full;
insert into public.all_types values
 (1, 1, 9007199254740993, -399841.62, 3.14159265358979323846, 1.5, 2.25, true, 'hello', 'v', 'ab', '2024-02-29', '13:45:56.123456', '13:45:56+02', '2024-02-29 13:45:56.123456', '2024-02-29 13:45:56.123', '2024-02-29 13:45:56.123456+02', '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', '{"b": [1, 2]}', '\xdeadbeef', '{1,2,3}', '{"x","y z"}', 'happy', '101', '1101', '192.168.0.1', '10.0.0.0/8', '08:00:2b:01:02:03', 12.34, '<a>1</a>', '(1,2)', '[1,5)', 42),
 (2, 2, null, 'NaN', 'NaN', 'Infinity', '-Infinity', false, '', null, null, 'infinity', '24:00:00', null, 'infinity', '-infinity', 'infinity', '-1 days', null, null, null, '\x', '{}', '{}', 'sad', '000', '', null, null, null, null, null, null, 'empty', 0),
 (3, -32768, -9223372036854775808, 9999999999.99, 0.000000001, -0, 1e300, null, null, null, null, '0001-01-01', '00:00:00', '00:00:00+00', '1970-01-01 00:00:00', '1900-01-01 00:00:00', '1970-01-01 00:00:00+00', '0', null, 'null', '"str"', null, null, null, null, null, null, null, null, null, null, null, null, null, null);
-- Part 2
insert into all_types (id, big, num_fixed, ts, tstz, t) values (4, 9007199254740993, 0.01, '2000-01-01 00:00:00.000001', '2000-01-01 00:00:00.000001+00', '23:59:59.999999');
update all_types set txt = 'changed', num_fixed = 1.10 where id = 1;
delete from all_types where id = 2;
update all_types set id = 30 where id = 3;
alter table all_types add column extra text default 'x';
insert into all_types (id, extra) values (5, 'y');
